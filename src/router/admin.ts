/**
 * The admin port: `/livez`, `/readyz`, `GET /v1/servers`, `GET /v1/resolve` (referral mode),
 * `POST|DELETE /v1/register`, and whatever routes other parts mount (metrics, dashboard).
 * Everything except the probes requires the shared token when one is configured; registration
 * requires one always, since it decides where client traffic goes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createTokenCheck } from "../shared/auth.js";
import type { Clock } from "../shared/clock.js";
import type { ErrorCode } from "../shared/errors.js";
import type { Logger } from "../shared/log.js";
import { writeJson, writeProxyError } from "../shared/proxy-response.js";
import type { PoolConfig } from "./config.js";
import { parseRegistration, type Registry } from "./membership/registration.js";
import type { Pool } from "./pool.js";
import { selectPool } from "./request-handler.js";
import type { ServersSnapshot } from "./servers-snapshot.js";

/** A route another module mounts on the admin port; returns true when it handled the request. */
export type AdminRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;

export interface AdminContext {
  readonly token: string | undefined;
  readonly via: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly sidecarControlPort: number;
  readonly pools: readonly { readonly config: PoolConfig; readonly pool: Pool }[];
  readonly registry: Registry;
  readonly isDraining: () => boolean;
  readonly snapshot: () => ServersSnapshot;
  readonly routes: readonly AdminRoute[];
}

const MAX_BODY_BYTES = 16 * 1024;

export function createAdminHandler(ctx: AdminContext): (req: IncomingMessage, res: ServerResponse) => void {
  const authorized = createTokenCheck(ctx.token);
  const poolNames = new Set(ctx.pools.map((p) => p.pool.name));
  const fail = (res: ServerResponse, code: ErrorCode, message?: string, headers?: Record<string, string>) =>
    writeProxyError(res, code, ctx.via, headers, message);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://admin.invalid");
    const method = req.method ?? "GET";
    const path = url.pathname;
    if (path === "/livez" || path === "/readyz") {
      if (method !== "GET" && method !== "HEAD") return fail(res, "METHOD_NOT_ALLOWED");
      if (path === "/readyz" && ctx.isDraining()) return writeJson(res, 503, { status: "draining" });
      return writeJson(res, 200, { status: "ok" });
    }
    if (path === "/v1/servers" || path === "/v1/resolve" || path === "/v1/register") {
      if (!authorized(req.headers)) return fail(res, "UNAUTHORIZED");
      if (path === "/v1/servers") {
        if (method !== "GET") return fail(res, "METHOD_NOT_ALLOWED");
        return writeJson(res, 200, ctx.snapshot());
      }
      if (path === "/v1/resolve") {
        if (method !== "GET") return fail(res, "METHOD_NOT_ALLOWED");
        return resolve(url, req, res);
      }
      if (method !== "POST" && method !== "DELETE") return fail(res, "METHOD_NOT_ALLOWED");
      if (ctx.token === undefined) {
        return fail(res, "UNAUTHORIZED", "registration needs a shared token: start the router with --token");
      }
      return register(method, req, res);
    }
    for (const route of ctx.routes) {
      if (await route(req, res, url)) return;
    }
    fail(res, "NOT_FOUND");
  }

  function resolve(url: URL, req: IncomingMessage, res: ServerResponse): void {
    const poolName = url.searchParams.get("pool");
    let chosen: (typeof ctx.pools)[number] | undefined;
    if (poolName !== null) {
      chosen = ctx.pools.find((p) => p.pool.name === poolName);
      if (!chosen) return fail(res, "NOT_FOUND", `no pool named ${JSON.stringify(poolName)}`);
    } else {
      const path = url.searchParams.get("path") ?? "/";
      chosen = selectPool(
        ctx.pools,
        url.searchParams.get("host") ?? req.headers.host,
        path.startsWith("/") ? path : "/" + path,
      );
    }
    const pick = chosen?.pool.pick(ctx.clock.now());
    if (!chosen || !pick) return fail(res, "NO_SERVER");
    writeJson(res, 200, {
      server: pick.member.dataUrl,
      pool: chosen.pool.name,
      algorithm: chosen.pool.balancer.name,
      score: pick.score ?? null,
    });
  }

  async function register(method: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      return fail(
        res,
        "BAD_REQUEST",
        (err as Error).message === "too large" ? "body too large" : "body is not JSON",
      );
    }
    const reg = parseRegistration(body, ctx.sidecarControlPort, poolNames);
    if ("error" in reg) return fail(res, "BAD_REQUEST", reg.error);
    const now = ctx.clock.now();
    if (method === "DELETE") {
      const removed = ctx.registry.unregister(reg.pool, reg.address.dataUrl);
      ctx.logger.info("server unregistered", {
        pool: reg.pool,
        dataUrl: reg.address.dataUrl,
        known: removed,
      });
      return writeJson(res, 200, { unregistered: removed, pool: reg.pool, dataUrl: reg.address.dataUrl });
    }
    const outcome = ctx.registry.register(reg, now);
    if (outcome === "full") return refuseFull(res, reg.pool, reg.address.dataUrl, now);
    if (outcome === "added") ctx.logger.info("server registered", { pool: reg.pool, ...reg.address });
    writeJson(res, 200, {
      registered: true,
      new: outcome === "added",
      pool: reg.pool,
      dataUrl: reg.address.dataUrl,
      controlUrl: reg.address.controlUrl,
      ttlMs: ctx.registry.ttlMs,
    });
  }

  // One warning per minute at most: a registrant retrying in a loop must not flood the log as well.
  let fullWarnedAt = -Infinity;
  let refusedSinceWarning = 0;

  function refuseFull(res: ServerResponse, pool: string, dataUrl: string, now: number): void {
    const max = ctx.registry.maxEntries;
    refusedSinceWarning++;
    if (now - fullWarnedAt >= 60_000) {
      ctx.logger.warn("registration refused: the registry is full", {
        pool,
        dataUrl,
        maxRegistrations: max,
        refused: refusedSinceWarning,
      });
      fullWarnedAt = now;
      refusedSinceWarning = 0;
    }
    const message =
      max === 0
        ? "this router takes no registrations (--max-registrations 0)"
        : `this router already holds its maximum of ${max} registered servers (--max-registrations); ` +
          "renewals of registered servers still succeed, new ones once entries expire";
    // Any entry not renewed is gone within one TTL.
    fail(res, "REGISTRY_FULL", message, { "retry-after": String(Math.ceil(ctx.registry.ttlMs / 1000)) });
  }

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      ctx.logger.error("admin request failed", { err: err as Error, url: req.url });
      if (!res.headersSent) fail(res, "BAD_REQUEST");
      else res.destroy();
    });
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.pause();
        reject(new Error("too large"));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
