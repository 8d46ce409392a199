/**
 * The router's data path, one short chain per request:
 *
 *   guard (loop, CONNECT, request target) → choose pool → trace context → pick a server
 *     → redirect (307) | forward → failover (next server in round-robin order) → account
 *
 * Guard first so nothing is spent on requests we refuse. The request target is reduced to its
 * path: an absolute-form target (`GET http://elsewhere/...`) or an unknown Host only ever selects
 * among our own pools, and the chosen member's address comes from the pool, never from the
 * request: the router is not an open proxy.
 *
 * Failover (DESIGN.md): a failure before any response byte is offered to us by forward(). We try
 * the next server when the request provably never reached an app (connect error), or when the
 * method is idempotent (RFC 9110 §9.2.2) and so may be repeated; and in both cases only while the
 * request body can be sent again: it is streamed, and only its first REPLAY_LIMIT_BYTES are kept
 * (by reference) while an attempt is under way, for exactly this. A response a sidecar made
 * itself to say the app never got the request (502 UPSTREAM_UNREACHABLE; 503 UPSTREAM_UNAVAILABLE,
 * OVERLOADED or DRAINING) is declined and retried the same way, for any method; the header is
 * looked at only for those two statuses, so other responses cost nothing more.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Dispatcher } from "undici";
import type { Clock } from "../shared/clock.js";
import type { RouterRequestObserver, RouterRequestScope } from "../shared/call-observer.js";
import {
  classifyUpstreamError,
  neverReachedUpstream,
  PROXY_ERROR_HEADER,
  type ErrorCode,
} from "../shared/errors.js";
import { forward, type ForwardOptions } from "../shared/forward.js";
import { forwardRequestHeaders, rawHeaderValues, viaHasLoop } from "../shared/headers.js";
import { decodeLoadHeader, LOAD_HEADER } from "../shared/load-report.js";
import { writeProxyError } from "../shared/proxy-response.js";
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from "../shared/trace-context.js";
import { forwardUpgrade } from "../shared/upgrade.js";
import type { Logger } from "../shared/log.js";
import { BodyRelay } from "./body-relay.js";
import type { PoolConfig, RouterMode } from "./config.js";
import type { Member, Pool } from "./pool.js";

/** RFC 9110 §9.2.2: repeating these has the same effect as sending once. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "PUT",
  "DELETE",
  "TRACE",
]);

const TRACE_HEADERS: ReadonlySet<string> = new Set(["traceparent"]);
const TRACE_AND_STATE: ReadonlySet<string> = new Set(["traceparent", "tracestate"]);
const STRIP_RESPONSE: ReadonlySet<string> = new Set([LOAD_HEADER]);
const LOAD_HEADER_BYTES = Buffer.from(LOAD_HEADER);
const ERROR_HEADER_BYTES = Buffer.from(PROXY_ERROR_HEADER);

/**
 * Proxy-made answers (`x-tasklb-error`) that prove the request never reached an app, by the status
 * they come with: the sidecar could not connect to its app (502), or it refused the call itself
 * because its app is down, it is shedding or it is draining (503).
 */
export const NEVER_REACHED_APP: ReadonlyMap<number, ReadonlySet<string>> = new Map([
  [502, new Set(["UPSTREAM_UNREACHABLE"])],
  [503, new Set(["UPSTREAM_UNAVAILABLE", "OVERLOADED", "DRAINING"])],
]);

/**
 * The code of a response that never reached an app (see NEVER_REACHED_APP), else undefined.
 * Cheap for every other response: the header is only searched for 502 and 503.
 */
export function neverReachedAppCode(status: number, rawHeaders: readonly Buffer[]): string | undefined {
  const codes = status === 502 || status === 503 ? NEVER_REACHED_APP.get(status) : undefined;
  if (codes === undefined) return undefined;
  const code = findRaw(rawHeaders, ERROR_HEADER_BYTES);
  return code !== undefined && codes.has(code) ? code : undefined;
}

/**
 * After a sidecar said its app cannot be reached, its reports are not trusted to say otherwise for
 * this long: its app probe runs once a second by default, so a report may lag the data path.
 */
export const APP_UNREACHABLE_HOLD_MS = 1000;

export interface RequestHandlerContext {
  readonly mode: RouterMode;
  readonly retries: number;
  readonly trustForwarded: boolean;
  /** Our `Via` entry, e.g. `1.1 tasklb-router-3f9a`. */
  readonly via: string;
  /** The instance-unique part of `via`, for loop detection. */
  readonly pseudonym: string;
  readonly upstreamTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly observer: RouterRequestObserver | undefined;
  /** Pools in matching order (the default pool, which matches everything, last). */
  readonly pools: readonly { readonly config: PoolConfig; readonly pool: Pool }[];
  readonly dispatcher: (member: Member) => Dispatcher;
  readonly isDraining: () => boolean;
  /** Called when a client request starts and when it is over (for draining). */
  readonly onRequestStart: () => void;
  readonly onRequestEnd: () => void;
}

/** Chooses the pool for a Host (port ignored) and path: first configured match, else the default pool. */
export function selectPool<P extends { readonly config: PoolConfig }>(
  pools: readonly P[],
  host: string | undefined,
  path: string,
): P | undefined {
  const h = host === undefined ? undefined : stripPort(host).toLowerCase();
  let fallback: P | undefined;
  for (const p of pools) {
    const m = p.config.match;
    if (m === undefined) {
      fallback ??= p;
      continue;
    }
    if (m.host !== undefined && m.host !== h) continue;
    if (m.pathPrefix !== undefined && !path.startsWith(m.pathPrefix)) continue;
    return p;
  }
  return fallback;
}

function stripPort(host: string): string {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.indexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

/**
 * Reduces a request target to origin-form (`/path?query`). Returns the authority of an absolute-form
 * target too, which then stands for Host (RFC 9112 §3.2.2) when choosing a pool. Undefined: refuse.
 */
export function originForm(target: string): { path: string; authority: string | undefined } | undefined {
  if (target.startsWith("/")) return { path: target, authority: undefined };
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    const u = new URL(target);
    return { path: (u.pathname || "/") + u.search, authority: u.host };
  } catch {
    return undefined;
  }
}

function findRaw(raw: readonly Buffer[], name: Buffer): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === name.length && n.toString("latin1").toLowerCase() === name.toString("latin1")) {
      return raw[i + 1]!.toString("latin1");
    }
  }
  return undefined;
}

interface Prepared {
  readonly pool: Pool;
  readonly headers: string[];
  readonly hasBody: boolean;
  readonly path: string;
  readonly scope: RouterRequestScope | undefined;
  readonly startedAt: number;
}

export function createRequestHandler(ctx: RequestHandlerContext): {
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Ends upgraded (WebSocket) connections, which the HTTP server no longer tracks. */
  readonly closeUpgrades: () => void;
} {
  const { clock, observer } = ctx;
  const forwardOptions: ForwardOptions = {
    via: ctx.via,
    stripResponseHeaders: STRIP_RESPONSE,
    headersTimeoutMs: ctx.upstreamTimeoutMs,
    bodyTimeoutMs: ctx.upstreamTimeoutMs,
  };

  /** Guards, pool, headers and trace context; an error code when the request is refused. */
  function prepare(req: IncomingMessage, upgrade: boolean): Prepared | ErrorCode {
    const startedAt = clock.now();
    if (viaHasLoop(req.headers.via, ctx.pseudonym)) return "LOOP_DETECTED";
    if (req.method === "CONNECT") return "METHOD_NOT_ALLOWED";
    const target = originForm(req.url ?? "/");
    if (!target) return "BAD_REQUEST";
    const host = target.authority ?? req.headers.host;
    const chosen = selectPool(ctx.pools, host, target.path);
    if (!chosen) return "NO_SERVER";
    req.url = target.path;

    // Trace context: forward the incoming traceparent unchanged (with its tracestate), or a child
    // of the observer's span, or — when absent or invalid — a new trace (and no stale tracestate).
    const tp = rawHeaderValues(req.rawHeaders, "traceparent");
    const incoming = tp?.length === 1 ? parseTraceparent(tp[0]) : undefined;
    const traceId = incoming?.traceId ?? newTraceId();
    const sampled = incoming ? (incoming.flags & 1) === 1 : true;
    let scope: RouterRequestScope | undefined;
    if (observer) {
      try {
        scope = observer.onRequestStart({
          method: req.method ?? "GET",
          target: target.path,
          traceId,
          parentSpanId: incoming?.parentId,
          sampled,
          remoteAddress: req.socket.remoteAddress,
          pool: chosen.pool.name,
          algorithm: chosen.pool.balancer.name,
        });
      } catch {
        scope = undefined;
      }
    }
    const headers: string[] = [];
    const keepAsIs = incoming !== undefined && scope?.spanId === undefined;
    const hasBody = forwardRequestHeaders(
      req.rawHeaders,
      {
        via: ctx.via,
        trustForwarded: ctx.trustForwarded,
        remoteAddress: req.socket.remoteAddress,
        proto: (req.socket as { encrypted?: boolean }).encrypted ? "https" : "http",
        keepUpgrade: upgrade,
      },
      keepAsIs ? undefined : incoming ? TRACE_HEADERS : TRACE_AND_STATE,
      headers,
    );
    if (!keepAsIs) {
      const flags =
        scope?.spanId !== undefined ? ((scope.sampled ?? sampled) ? 1 : 0) : (incoming?.flags ?? 1);
      headers.push("traceparent", formatTraceparent(traceId, scope?.spanId ?? newSpanId(), flags));
    }
    return { pool: chosen.pool, headers, hasBody, path: target.path, scope, startedAt };
  }

  function endScope(
    p: Prepared,
    status: number,
    outcome: string,
    server: string | undefined,
    attempts: number,
  ): void {
    if (!p.scope) return;
    try {
      p.scope.end({ durationMs: clock.now() - p.startedAt, status, outcome, server, attempts });
    } catch {
      // Telemetry never fails a request.
    }
  }

  function note(scope: RouterRequestScope | undefined, f: (s: RouterRequestScope) => void): void {
    if (!scope) return;
    try {
      f(scope);
    } catch {
      // ignore
    }
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    ctx.onRequestStart();
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      ctx.onRequestEnd();
    };
    res.once("close", done);
    // While draining, answer what is already here but let no connection stay open for more.
    if (ctx.isDraining()) res.shouldKeepAlive = false;

    const p = prepare(req, false);
    if (typeof p === "string") {
      writeProxyError(res, p, ctx.via);
      return;
    }
    const first = p.pool.pick(clock.now());
    if (!first) {
      writeProxyError(res, "NO_SERVER", ctx.via);
      endScope(p, 503, "NO_SERVER", undefined, 0);
      return;
    }
    note(p.scope, (s) => s.decision(first.member.dataUrl, first.score));

    if (ctx.mode === "redirect") {
      res.writeHead(307, {
        location: first.member.dataUrl + p.path,
        "cache-control": "no-store",
        via: ctx.via,
        "content-length": 0,
      });
      res.end();
      endScope(p, 307, "ok", first.member.dataUrl, 1);
      return;
    }

    const method = req.method ?? "GET";
    const tried = new Set<string>();
    let attempts = 0;
    // A relay per attempt lets another attempt send the body again (see body-relay.ts).
    const relayBodies = p.hasBody && ctx.retries > 0;
    let relay: BodyRelay | undefined;

    /** The body can be sent (again): none, none of it read yet, or all that was read kept. */
    const bodyIntact = () =>
      !p.hasBody || (relay !== undefined ? relay.replayable : !(req.readableDidRead || req.destroyed));

    /** The next server for another attempt, or undefined when this request must stay here. */
    const nextFor = (m: Member, now: number): Member | undefined => {
      if (attempts > ctx.retries || !bodyIntact()) return undefined;
      if (res.destroyed || res.headersSent) return undefined;
      return p.pool.next(m.id, tried, now);
    };

    const failOver = (m: Member, next: Member, code: string): void => {
      note(p.scope, (s) => s.failover(m.dataUrl, code));
      ctx.logger.debug("failover", { from: m.dataUrl, to: next.dataUrl, code, method });
      attempt(next);
    };

    const attempt = (m: Member): void => {
      attempts++;
      tried.add(m.id);
      const t0 = clock.now();
      let failed = false;
      let statsOpen = true;
      m.stats.onRequestStart();
      const closeStats = (latency: number | undefined) => {
        if (!statsOpen) return;
        statsOpen = false;
        m.stats.onRequestEnd(clock.now(), latency, failed);
      };
      if (relayBodies) relay = new BodyRelay(req, relay);
      const body = relay ?? p.hasBody;
      forward(req, res, ctx.dispatcher(m), p.headers, body, forwardOptions, {
        declineResponse(status, rawHeaders) {
          const code = neverReachedAppCode(status, rawHeaders);
          if (code === undefined) {
            // The sidecar's app failed mid-call (502 UPSTREAM_ERROR): it may have done the work,
            // so, as with a reset of the sidecar itself, only an idempotent request goes elsewhere.
            if (status !== 502 || !IDEMPOTENT_METHODS.has(method)) return undefined;
            if (findRaw(rawHeaders, ERROR_HEADER_BYTES) !== "UPSTREAM_ERROR") return undefined;
            const next = nextFor(m, clock.now());
            if (!next) return undefined;
            failed = true;
            closeStats(undefined);
            return () => failOver(m, next, "UPSTREAM_ERROR");
          }
          const now = clock.now();
          p.pool.onSidecarRefusal(m.id, code, now, APP_UNREACHABLE_HOLD_MS);
          const next = nextFor(m, now);
          if (!next) return undefined;
          failed = true;
          closeStats(undefined);
          return () => failOver(m, next, code);
        },
        onResponseStart(status, rawHeaders) {
          const now = clock.now();
          m.stats.observeLatency(now, now - t0);
          const load = findRaw(rawHeaders, LOAD_HEADER_BYTES);
          if (load !== undefined) {
            const pb = decodeLoadHeader(load);
            if (pb) p.pool.onPiggyback(m.id, pb, now);
          }
          // A 5xx the sidecar made itself (app down, shedding) counts against the server.
          if (status >= 500 && findRaw(rawHeaders, ERROR_HEADER_BYTES) !== undefined) failed = true;
        },
        onUpstreamError(err) {
          const now = clock.now();
          const code = classifyUpstreamError(err);
          const neverReached = neverReachedUpstream(err);
          failed = true;
          closeStats(undefined);
          if (neverReached) p.pool.onConnectFailure(m.id, code, now);
          if (!neverReached && !IDEMPOTENT_METHODS.has(method)) return false;
          const next = nextFor(m, now);
          if (!next) return false;
          failOver(m, next, code);
          return true;
        },
        onEnd(outcome, status) {
          if (outcome !== "ok" && outcome !== "aborted") failed = true;
          closeStats(undefined);
          // A body no attempt is reading any more is discarded, so the client connection stays usable.
          if (relayBodies && outcome !== "ok") req.resume();
          endScope(p, status, outcome, m.dataUrl, attempts);
        },
      });
    };
    attempt(first.member);
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (code: ErrorCode) => {
      socket.end(
        `HTTP/1.1 ${code === "NO_SERVER" ? "503 Service Unavailable" : "400 Bad Request"}\r\n${PROXY_ERROR_HEADER}: ${code}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    };
    if (ctx.isDraining()) return refuse("NO_SERVER");
    const p = prepare(req, true);
    if (typeof p === "string") return refuse(p);
    const pick = p.pool.pick(clock.now());
    const url = pick ? new URL(pick.member.dataUrl) : undefined;
    if (!pick || !url || url.protocol !== "http:") {
      endScope(p, 503, "NO_SERVER", undefined, 0);
      return refuse("NO_SERVER");
    }
    const m = pick.member;
    note(p.scope, (s) => s.decision(m.dataUrl, pick.score));
    ctx.onRequestStart();
    m.stats.onRequestStart();
    upgraded.add(socket);
    const t0 = clock.now();
    forwardUpgrade(
      req,
      socket,
      head,
      { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80) },
      p.headers,
      ctx.via,
      ctx.connectTimeoutMs,
      (outcome, status) => {
        const failed = outcome !== "ok";
        if (outcome === "UPSTREAM_UNREACHABLE") p.pool.onConnectFailure(m.id, outcome, clock.now());
        m.stats.onRequestEnd(clock.now(), failed ? undefined : clock.now() - t0, failed);
        upgraded.delete(socket);
        ctx.onRequestEnd();
        endScope(p, status, outcome, m.dataUrl, 1);
      },
    );
  }

  const upgraded = new Set<Duplex>();
  const closeUpgrades = () => {
    for (const s of upgraded) s.destroy();
  };

  return { onRequest, onUpgrade, closeUpgrades };
}
