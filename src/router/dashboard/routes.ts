/**
 * The dashboard's HTTP routes on the router's admin port:
 *
 *   GET  /dashboard             the page (or, when the admin token is set and missing, a login form)
 *   POST /dashboard/login       login form → HttpOnly session cookie → back to /dashboard
 *   GET  /dashboard/assets/*    script, stylesheet, uPlot (public: they hold no data)
 *   GET  /v1/events             server-sent events: `history` once, then `snapshot` every second
 *   GET  /v1/history            the last minutes of chart points and the latest frame, as JSON
 *
 * The handler returns false for any other path so the admin server can go on to its own routes.
 * Everything it serves comes from the feed's once-per-second sample, already serialized.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock } from "../../shared/clock.js";
import { ErrorCodes, PROXY_ERROR_HEADER, type ErrorCode } from "../../shared/errors.js";
import { writeJson } from "../../shared/proxy-response.js";
import { loadDashboardAssets, type Asset } from "./assets.js";
import { loginPage, PAGE_HTML } from "./assets/page.js";
import { createDashboardAuth, type TokenCheck } from "./dashboard-auth.js";
import type { DashboardFeed } from "./feed.js";
import { createSseHub, sseEvent } from "./sse.js";

export interface DashboardRoutesOptions {
  readonly feed: DashboardFeed;
  /** The admin port's token check (`createTokenCheck(token)` from src/shared/auth.ts). */
  readonly tokenCheck: TokenCheck;
  /** Concurrent event streams at most (each open tab holds one). */
  readonly maxClients?: number;
  readonly heartbeatMs?: number;
  /** Defaults to {@link loadDashboardAssets}. */
  readonly assets?: ReadonlyMap<string, Asset>;
  /** Monotonic clock for session expiry (default: the process's). */
  readonly clock?: Clock;
  /** How long a login lasts (default 12 h). */
  readonly sessionTtlMs?: number;
  /** The router's `--trust-forwarded`: may `X-Forwarded-Proto: https` mark the cookie Secure. */
  readonly trustForwarded?: boolean;
}

export type DashboardRoutes = ((req: IncomingMessage, res: ServerResponse) => boolean) & {
  /** Open event streams. */
  readonly clients: number;
  /** Ends every event stream and stops listening to the feed (call before closing the admin server). */
  close(): void;
};

const MAX_LOGIN_BODY = 4096;

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

export function createDashboardRoutes(options: DashboardRoutesOptions): DashboardRoutes {
  const { feed } = options;
  const auth = createDashboardAuth(options.tokenCheck, {
    ...(options.clock !== undefined && { clock: options.clock }),
    ...(options.sessionTtlMs !== undefined && { sessionTtlMs: options.sessionTtlMs }),
    ...(options.trustForwarded !== undefined && { trustForwarded: options.trustForwarded }),
  });
  const assets = options.assets ?? loadDashboardAssets();
  const hub = createSseHub({
    ...(options.maxClients !== undefined && { maxClients: options.maxClients }),
    ...(options.heartbeatMs !== undefined && { heartbeatMs: options.heartbeatMs }),
  });
  const unsubscribe = feed.subscribe((_frame, json) => {
    if (hub.size > 0) hub.broadcast(sseEvent("snapshot", json));
  });

  const page = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    if (!only(req, res, ["GET", "HEAD"])) return;
    const token = query.get("token");
    if (token !== null && auth.valid(token)) {
      // Start a session and drop the token from the address bar (and from history and Referer).
      res.writeHead(303, {
        location: "dashboard",
        "set-cookie": auth.sessionCookie(req),
        "cache-control": "no-store",
      });
      res.end();
      return;
    }
    if (!auth.authorized(req)) {
      const message =
        token !== null || query.get("login") === "failed"
          ? "That token is not right. Try again."
          : "This router's admin API is protected by a token.";
      res.writeHead(401, PAGE_HEADERS);
      res.end(loginPage(message));
      return;
    }
    res.writeHead(200, PAGE_HEADERS);
    res.end(PAGE_HTML);
  };

  const login = (req: IncomingMessage, res: ServerResponse) => {
    if (!only(req, res, ["POST"])) return;
    readForm(req, MAX_LOGIN_BODY).then(
      (form) => {
        const token = form?.get("token") ?? "";
        if (form === undefined) return error(res, "BAD_REQUEST");
        if (auth.valid(token)) {
          res.writeHead(303, {
            location: "../dashboard",
            "set-cookie": auth.sessionCookie(req),
            "cache-control": "no-store",
          });
        } else {
          res.writeHead(303, { location: "../dashboard?login=failed", "cache-control": "no-store" });
        }
        res.end();
      },
      () => error(res, "BAD_REQUEST"),
    );
  };

  const file = (req: IncomingMessage, res: ServerResponse, name: string) => {
    if (!only(req, res, ["GET", "HEAD"])) return;
    const a = assets.get(name);
    if (a === undefined) return error(res, "NOT_FOUND");
    const headers = {
      etag: a.etag,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
    };
    if (req.headers["if-none-match"] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-type": a.contentType, "content-length": a.body.length });
    res.end(a.body);
  };

  const events = (req: IncomingMessage, res: ServerResponse) => {
    if (!only(req, res, ["GET"])) return;
    if (!auth.authorized(req)) return error(res, "UNAUTHORIZED");
    const initial = [sseEvent("history", feed.historyJson())];
    const latest = feed.latestJson();
    if (latest !== undefined) initial.push(sseEvent("snapshot", latest));
    if (!hub.accept(req, res, initial)) {
      error(res, "OVERLOADED", { "retry-after": "5" }, `at most ${hub.maxClients} dashboard streams at once`);
    }
  };

  const history = (req: IncomingMessage, res: ServerResponse) => {
    if (!only(req, res, ["GET", "HEAD"])) return;
    if (!auth.authorized(req)) return error(res, "UNAUTHORIZED");
    const body = feed.historyJson();
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
    });
    res.end(body);
  };

  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    if (path === "/dashboard") {
      page(req, res, new URLSearchParams(q < 0 ? "" : url.slice(q + 1)));
    } else if (path === "/dashboard/") {
      res.writeHead(308, { location: "../dashboard" + (q < 0 ? "" : url.slice(q)) });
      res.end();
    } else if (path === "/dashboard/login") {
      login(req, res);
    } else if (path.startsWith("/dashboard/assets/")) {
      file(req, res, path.slice("/dashboard/assets/".length));
    } else if (path === "/v1/events") {
      events(req, res);
    } else if (path === "/v1/history") {
      history(req, res);
    } else {
      return false;
    }
    return true;
  };

  // Object.assign would copy the getter's current value; defineProperties keeps it live.
  return Object.defineProperties(handler, {
    clients: { get: () => hub.size, enumerable: true },
    close: {
      value: () => {
        unsubscribe();
        hub.close();
      },
    },
  }) as DashboardRoutes;
}

function only(req: IncomingMessage, res: ServerResponse, methods: readonly string[]): boolean {
  if (methods.includes(req.method ?? "")) return true;
  error(res, "METHOD_NOT_ALLOWED", { allow: methods.join(", ") });
  return false;
}

function error(
  res: ServerResponse,
  code: ErrorCode,
  headers?: Record<string, string>,
  message?: string,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  writeJson(
    res,
    ErrorCodes[code].status,
    { error: { code, message: message ?? ErrorCodes[code].message } },
    {
      [PROXY_ERROR_HEADER]: code,
      ...(code === "UNAUTHORIZED" && { "www-authenticate": 'Bearer realm="tasklb admin"' }),
      ...headers,
    },
  );
}

/** Reads an `application/x-www-form-urlencoded` body of at most `limit` bytes; undefined if not one. */
function readForm(req: IncomingMessage, limit: number): Promise<URLSearchParams | undefined> {
  return new Promise((resolve, reject) => {
    const type = req.headers["content-type"] ?? "";
    if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      req.resume();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new Error("form too large"));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", reject);
  });
}
