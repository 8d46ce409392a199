/**
 * The admin token, for people as well as programs. API clients send `Authorization: Bearer` (or
 * `X-Tasklb-Token`); a browser cannot put a header on a link or an EventSource, so the page accepts
 * the token once (`/dashboard?token=…` or the login form) and keeps it in an HttpOnly,
 * SameSite=Strict cookie. Every comparison goes through the router's constant-time token check.
 * The cookie is accepted only by the dashboard's read-only routes, never by the admin API's writes.
 */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";

export const DASHBOARD_COOKIE = "tasklb_admin";
const COOKIE_MAX_AGE_S = 12 * 3600;

export type TokenCheck = (headers: IncomingHttpHeaders) => boolean;

export interface DashboardAuth {
  /** False when no token is configured (everything is open). */
  readonly required: boolean;
  /** Header or cookie carries the right token. */
  authorized(req: IncomingMessage): boolean;
  /** `token` is the right one. */
  valid(token: string): boolean;
  /** The Set-Cookie value that remembers `token`. */
  cookie(token: string): string;
}

export function createDashboardAuth(tokenCheck: TokenCheck): DashboardAuth {
  const required = !tokenCheck({});
  const valid = (token: string) => token !== "" && tokenCheck({ authorization: `Bearer ${token}` });
  return {
    required,
    valid,
    authorized(req) {
      if (!required || tokenCheck(req.headers)) return true;
      const fromCookie = readCookie(req.headers.cookie, DASHBOARD_COOKIE);
      return fromCookie !== undefined && valid(fromCookie);
    },
    cookie(token) {
      return `${DASHBOARD_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${COOKIE_MAX_AGE_S}`;
    },
  };
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
