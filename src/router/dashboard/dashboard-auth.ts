/**
 * The admin token, for people as well as programs. API clients send `Authorization: Bearer` (or
 * `X-Tasklb-Token`); a browser cannot put a header on a link or an EventSource, so the page accepts
 * the token once (`/dashboard?token=…` or the login form), checked by the router's constant-time
 * token check, and answers with a session cookie instead.
 *
 * The cookie never holds the token: a cookie can leak (a shared browser profile, a proxy log, a
 * stolen laptop) and the token also registers servers, i.e. decides where client traffic goes.
 * The session is `v1.<expiry>.<mac>`, the MAC an HMAC-SHA256 under a random key made when the
 * router starts, over the version and the expiry, compared in constant time. So a session proves
 * only "this router let someone in until <expiry>": it reveals nothing about the token, cannot be
 * extended or forged without the key, and every session dies with the process (a restart logs
 * everyone out). The expiry is on the router's monotonic clock, which is fine because only the
 * process that issued the session can check it. The cookie is accepted only by the dashboard's
 * read-only routes, never by the admin API.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { monotonicClock, type Clock } from "../../shared/clock.js";

export const DASHBOARD_COOKIE = "tasklb_admin";
export const DEFAULT_SESSION_TTL_MS = 12 * 3600 * 1000;
const SESSION_VERSION = "v1";
/** `v1.<expiry ms, integer>.<43 base64url characters: 32 bytes of HMAC-SHA256>` */
const SESSION_PATTERN = /^v1\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/;

export type TokenCheck = (headers: IncomingHttpHeaders) => boolean;

export interface DashboardAuthOptions {
  /** Monotonic; session expiries are measured on it. */
  readonly clock?: Clock;
  /** How long a session lasts; the cookie's Max-Age matches. */
  readonly sessionTtlMs?: number;
  /**
   * Whether `X-Forwarded-Proto: https` may mark the cookie `Secure` (the router's
   * `--trust-forwarded`): only a trusted proxy in front may say the browser used TLS.
   */
  readonly trustForwarded?: boolean;
  /** The MAC key; random (32 bytes) per process unless a test fixes it. */
  readonly key?: Buffer;
}

export interface DashboardAuth {
  /** False when no token is configured (everything is open). */
  readonly required: boolean;
  /** A header carries the right token, or a cookie carries a live session. */
  authorized(req: IncomingMessage): boolean;
  /** `token` is the right one. */
  valid(token: string): boolean;
  /** The Set-Cookie value of a new session, for a request that has just shown the right token. */
  sessionCookie(req: IncomingMessage): string;
}

export function createDashboardAuth(
  tokenCheck: TokenCheck,
  options: DashboardAuthOptions = {},
): DashboardAuth {
  const clock = options.clock ?? monotonicClock;
  const ttlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const key = options.key ?? randomBytes(32);
  const required = !tokenCheck({});
  const valid = (token: string) => token !== "" && tokenCheck({ authorization: `Bearer ${token}` });
  const mac = (expiry: string) => createHmac("sha256", key).update(`${SESSION_VERSION}.${expiry}`).digest();

  const liveSession = (value: string | undefined): boolean => {
    const m = value === undefined ? null : SESSION_PATTERN.exec(value);
    if (!m) return false;
    const presented = Buffer.from(m[2]!, "base64url");
    // The pattern fixes the length (43 characters decode to 32 bytes), so the comparison is constant-time.
    if (presented.length !== 32 || !timingSafeEqual(presented, mac(m[1]!))) return false;
    const expiry = Number(m[1]);
    const now = clock.now();
    // A genuine session never lies further ahead than one TTL; one that does was not made by us.
    return expiry > now && expiry <= now + ttlMs + 1;
  };

  return {
    required,
    valid,
    authorized(req) {
      if (!required || tokenCheck(req.headers)) return true;
      return liveSession(readCookie(req.headers.cookie, DASHBOARD_COOKIE));
    },
    sessionCookie(req) {
      const expiry = String(Math.ceil(clock.now() + ttlMs));
      const value = `${SESSION_VERSION}.${expiry}.${mac(expiry).toString("base64url")}`;
      const secure = cameOverTls(req, options.trustForwarded === true) ? "; Secure" : "";
      return `${DASHBOARD_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.max(1, Math.floor(ttlMs / 1000))}${secure}`;
    },
  };
}

/**
 * TLS on this connection, or (only when forwarded headers are trusted) a proxy in front saying the
 * browser used https: the first `X-Forwarded-Proto` value is the one the client-facing proxy set.
 */
function cameOverTls(req: IncomingMessage, trustForwarded: boolean): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  if (!trustForwarded) return false;
  const proto = req.headers["x-forwarded-proto"];
  const first = (Array.isArray(proto) ? proto[0] : proto)?.split(",")[0]?.trim().toLowerCase();
  return first === "https";
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}
