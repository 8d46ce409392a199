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
import {
  forward,
  type ForwardObserver,
  type ForwardOptions,
  type ForwardOutcome,
} from "../shared/forward.js";
import {
  forwardRequestHeaders,
  rawHeaderValues,
  viaHasLoop,
  type RequestHeaderContext,
} from "../shared/headers.js";
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
  const code = findRaw(rawHeaders, PROXY_ERROR_HEADER);
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
  /** `x-tasklb-load` value asking each sidecar for its piggybacked report: the shared token, or `1`. */
  readonly loadAsk: string;
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
  // The Host is reduced only when a pool matches on it (most requests meet the default pool alone).
  let h: string | undefined | null = null;
  let fallback: P | undefined;
  for (const p of pools) {
    const m = p.config.match;
    if (m === undefined) {
      fallback ??= p;
      continue;
    }
    if (m.host !== undefined) {
      if (h === null) h = host === undefined ? undefined : stripPort(host).toLowerCase();
      if (m.host !== h) continue;
    }
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

/**
 * The value of a response header in undici's raw Buffer pairs, by its lowercase name (letters,
 * digits and `-` only). Names are compared byte by byte, so no string is made for a header that
 * is not the one looked for.
 */
function findRaw(raw: readonly Buffer[], lowerName: string): string | undefined {
  const len = lowerName.length;
  outer: for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length !== len) continue;
    // `| 0x20` lowercases ASCII letters and leaves `-` and digits as they are; the other bytes
    // it could confuse (control characters) cannot occur in a field name.
    for (let k = 0; k < len; k++) if ((n[k]! | 0x20) !== lowerName.charCodeAt(k)) continue outer;
    return raw[i + 1]!.toString("latin1");
  }
  return undefined;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What every request of one handler shares, built once. */
interface RequestPath {
  readonly ctx: RequestHandlerContext;
  readonly forwardOptions: ForwardOptions;
  /** forwardRequestHeaders is synchronous: one context object, filled in per request. */
  readonly headerCtx: Mutable<RequestHeaderContext>;
}

const ROUTED = Symbol("tasklb.routedRequest");
type TrackedResponse = ServerResponse & { [ROUTED]?: RoutedRequest };

/** One listener function for every response (not a closure per request); it finds its request. */
function onClientResponseClose(this: TrackedResponse): void {
  this[ROUTED]?.responseClosed();
}

/**
 * One client request through the router, from the guards to its end, over every attempt: the one
 * object made per request (like the sidecar's `Call`). It is the forward observer of each attempt,
 * so an attempt makes no closures; the state they would have captured lives in its fields.
 */
class RoutedRequest implements ForwardObserver {
  readonly #p: RequestPath;
  readonly #req: IncomingMessage;
  /** Undefined for an Upgrade (its socket has no ServerResponse). */
  readonly #res: ServerResponse | undefined;
  readonly #startedAt: number;
  #counted = false;

  // Set by prepare().
  #pool: Pool | undefined = undefined;
  #headers: string[] | undefined = undefined;
  #hasBody = false;
  #target = "/";
  #scope: RouterRequestScope | undefined = undefined;

  // The attempt under way.
  #member: Member | undefined = undefined;
  #attempts = 0;
  /** Servers tried, made only when a failover looks for the next one. */
  #tried: Set<string> | undefined = undefined;
  #t0 = 0;
  #failed = false;
  #statsOpen = false;
  /** A relay per attempt lets another attempt send the body again (see body-relay.ts). */
  #relayBodies = false;
  #relay: BodyRelay | undefined = undefined;

  constructor(p: RequestPath, req: IncomingMessage, res: ServerResponse | undefined) {
    this.#p = p;
    this.#req = req;
    this.#res = res;
    this.#startedAt = p.ctx.clock.now();
  }

  get pool(): Pool {
    return this.#pool!;
  }

  get headers(): string[] {
    return this.#headers!;
  }

  // ---- in-flight accounting (for draining) ---------------------------------------------------

  /** Counts the request in flight until its response closes. */
  track(res: ServerResponse): void {
    this.#counted = true;
    this.#p.ctx.onRequestStart();
    (res as TrackedResponse)[ROUTED] = this;
    res.on("close", onClientResponseClose);
  }

  responseClosed(): void {
    if (!this.#counted) return;
    this.#counted = false;
    this.#p.ctx.onRequestEnd();
  }

  // ---- guards, pool, headers, trace context ----------------------------------------------------

  /** Undefined when the request may go on; else the code it is refused with. */
  prepare(upgrade: boolean): ErrorCode | undefined {
    const { ctx, headerCtx } = this.#p;
    const req = this.#req;
    // Raw headers, not req.headers: that object is built lazily and this path never needs it.
    if (viaHasLoop(rawHeaderValues(req.rawHeaders, "via"), ctx.pseudonym)) return "LOOP_DETECTED";
    if (req.method === "CONNECT") return "METHOD_NOT_ALLOWED";
    const url = req.url ?? "/";
    let path: string;
    let authority: string | undefined;
    if (url.startsWith("/")) {
      path = url;
    } else {
      const target = originForm(url);
      if (!target) return "BAD_REQUEST";
      path = target.path;
      authority = target.authority;
      req.url = path;
    }
    // Node keeps the first of repeated Host fields; so does this.
    const chosen = selectPool(ctx.pools, authority ?? rawHeaderValues(req.rawHeaders, "host")?.[0], path);
    if (!chosen) return "NO_SERVER";
    const pool = chosen.pool;
    this.#pool = pool;
    this.#target = path;

    // Trace context: forward the incoming traceparent unchanged (with its tracestate), or a child
    // of the observer's span, or — when absent or invalid — a new trace (and no stale tracestate).
    const tp = rawHeaderValues(req.rawHeaders, "traceparent");
    const incoming = tp?.length === 1 ? parseTraceparent(tp[0]) : undefined;
    const traceId = incoming?.traceId ?? newTraceId();
    const sampled = incoming ? (incoming.flags & 1) === 1 : true;
    const remoteAddress = req.socket.remoteAddress;
    let scope: RouterRequestScope | undefined;
    if (ctx.observer) {
      try {
        scope = ctx.observer.onRequestStart({
          method: req.method ?? "GET",
          target: path,
          traceId,
          parentSpanId: incoming?.parentId,
          sampled,
          remoteAddress,
          pool: pool.name,
          algorithm: pool.balancer.name,
        });
      } catch {
        scope = undefined;
      }
      this.#scope = scope;
    }
    const spanId = scope?.spanId;
    const headers: string[] = [];
    const keepAsIs = incoming !== undefined && spanId === undefined;
    headerCtx.remoteAddress = remoteAddress;
    headerCtx.proto = (req.socket as { encrypted?: boolean }).encrypted ? "https" : "http";
    headerCtx.keepUpgrade = upgrade;
    this.#hasBody = forwardRequestHeaders(
      req.rawHeaders,
      headerCtx,
      keepAsIs ? undefined : incoming ? TRACE_HEADERS : TRACE_AND_STATE,
      headers,
    );
    headers.push(LOAD_HEADER, ctx.loadAsk);
    if (!keepAsIs) {
      const flags = spanId !== undefined ? ((scope!.sampled ?? sampled) ? 1 : 0) : (incoming?.flags ?? 1);
      headers.push("traceparent", formatTraceparent(traceId, spanId ?? newSpanId(), flags));
    }
    this.#headers = headers;
    return undefined;
  }

  // ---- telemetry (never fails a request) -------------------------------------------------------

  decision(server: string, score: number | undefined): void {
    if (this.#scope === undefined) return;
    try {
      this.#scope.decision(server, score);
    } catch {
      // ignore
    }
  }

  endScope(status: number, outcome: string, server: string | undefined, attempts: number): void {
    if (this.#scope === undefined) return;
    try {
      this.#scope.end({
        durationMs: this.#p.ctx.clock.now() - this.#startedAt,
        status,
        outcome,
        server,
        attempts,
      });
    } catch {
      // Telemetry never fails a request.
    }
  }

  // ---- proxy and redirect --------------------------------------------------------------------

  /** Answers with a 307 to the chosen server (referral mode). */
  redirect(m: Member): void {
    const res = this.#res!;
    res.writeHead(307, {
      location: m.dataUrl + this.#target,
      "cache-control": "no-store",
      via: this.#p.ctx.via,
      "content-length": 0,
    });
    res.end();
    this.endScope(307, "ok", m.dataUrl, 1);
  }

  /** Starts the first attempt. */
  proxy(m: Member): void {
    this.#relayBodies = this.#hasBody && this.#p.ctx.retries > 0;
    this.#attempt(m);
  }

  #attempt(m: Member): void {
    const { ctx, forwardOptions } = this.#p;
    this.#attempts++;
    this.#tried?.add(m.id);
    this.#member = m;
    this.#failed = false;
    this.#statsOpen = true;
    this.#t0 = ctx.clock.now();
    m.stats.onRequestStart();
    if (this.#relayBodies) this.#relay = new BodyRelay(this.#req, this.#relay);
    const body = this.#relay ?? this.#hasBody;
    forward(this.#req, this.#res!, ctx.dispatcher(m), this.#headers!, body, forwardOptions, this);
  }

  /** Ends the attempt's server accounting once (a failover ends it before its exchange does). */
  #closeStats(): void {
    if (!this.#statsOpen) return;
    this.#statsOpen = false;
    this.#member!.stats.onRequestEnd(this.#p.ctx.clock.now(), undefined, this.#failed);
  }

  /** The body can be sent (again): none, none of it read yet, or all that was read kept. */
  #bodyIntact(): boolean {
    if (!this.#hasBody) return true;
    const req = this.#req;
    return this.#relay !== undefined ? this.#relay.replayable : !(req.readableDidRead || req.destroyed);
  }

  /** The next server for another attempt, or undefined when this request must stay here. */
  #nextFor(m: Member, now: number): Member | undefined {
    if (this.#attempts > this.#p.ctx.retries || !this.#bodyIntact()) return undefined;
    const res = this.#res!;
    if (res.destroyed || res.headersSent) return undefined;
    // Until a failover, the only server tried is the current one.
    this.#tried ??= new Set([m.id]);
    return this.#pool!.next(m.id, this.#tried, now);
  }

  #failOver(m: Member, next: Member, code: string): void {
    const { ctx } = this.#p;
    if (this.#scope !== undefined) {
      try {
        this.#scope.failover(m.dataUrl, code);
      } catch {
        // ignore
      }
    }
    ctx.logger.debug("failover", {
      from: m.dataUrl,
      to: next.dataUrl,
      code,
      method: this.#req.method ?? "GET",
    });
    this.#attempt(next);
  }

  // ---- ForwardObserver: the attempt's exchange ---------------------------------------------------

  declineResponse(status: number, rawHeaders: readonly Buffer[]): (() => void) | undefined {
    // Cheap for every other response: the header is only searched for 502 and 503.
    if (status !== 502 && status !== 503) return undefined;
    const m = this.#member!;
    const clock = this.#p.ctx.clock;
    const code = neverReachedAppCode(status, rawHeaders);
    if (code === undefined) {
      // The sidecar's app failed mid-call (502 UPSTREAM_ERROR): it may have done the work, so, as
      // with a reset of the sidecar itself, only an idempotent request goes elsewhere.
      if (status !== 502 || !IDEMPOTENT_METHODS.has(this.#req.method ?? "GET")) return undefined;
      if (findRaw(rawHeaders, PROXY_ERROR_HEADER) !== "UPSTREAM_ERROR") return undefined;
      const next = this.#nextFor(m, clock.now());
      if (!next) return undefined;
      this.#failed = true;
      this.#closeStats();
      return () => this.#failOver(m, next, "UPSTREAM_ERROR");
    }
    const now = clock.now();
    this.#pool!.onSidecarRefusal(m.id, code, now, APP_UNREACHABLE_HOLD_MS);
    const next = this.#nextFor(m, now);
    if (!next) return undefined;
    this.#failed = true;
    this.#closeStats();
    return () => this.#failOver(m, next, code);
  }

  onResponseStart(status: number, rawHeaders: readonly Buffer[]): void {
    const m = this.#member!;
    const now = this.#p.ctx.clock.now();
    m.stats.observeLatency(now, now - this.#t0);
    const load = findRaw(rawHeaders, LOAD_HEADER);
    if (load !== undefined) {
      const pb = decodeLoadHeader(load);
      if (pb) this.#pool!.onPiggyback(m.id, pb, now);
    }
    // A 5xx the sidecar made itself (app down, shedding) counts against the server.
    if (status >= 500 && findRaw(rawHeaders, PROXY_ERROR_HEADER) !== undefined) this.#failed = true;
  }

  onUpstreamError(err: Error): boolean {
    const m = this.#member!;
    const now = this.#p.ctx.clock.now();
    const code = classifyUpstreamError(err);
    const neverReached = neverReachedUpstream(err);
    this.#failed = true;
    this.#closeStats();
    if (neverReached) this.#pool!.onConnectFailure(m.id, code, now);
    if (!neverReached && !IDEMPOTENT_METHODS.has(this.#req.method ?? "GET")) return false;
    const next = this.#nextFor(m, now);
    if (!next) return false;
    this.#failOver(m, next, code);
    return true;
  }

  onEnd(outcome: ForwardOutcome, status: number): void {
    if (outcome !== "ok" && outcome !== "aborted") this.#failed = true;
    this.#closeStats();
    // A body no attempt is reading any more is discarded, so the client connection stays usable.
    if (this.#relayBodies && outcome !== "ok") this.#req.resume();
    this.endScope(status, outcome, this.#member!.dataUrl, this.#attempts);
  }
}

export function createRequestHandler(ctx: RequestHandlerContext): {
  readonly onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Ends upgraded (WebSocket) connections, which the HTTP server no longer tracks. */
  readonly closeUpgrades: () => void;
} {
  const { clock } = ctx;
  const path: RequestPath = {
    ctx,
    forwardOptions: {
      via: ctx.via,
      stripResponseHeaders: STRIP_RESPONSE,
      headersTimeoutMs: ctx.upstreamTimeoutMs,
      bodyTimeoutMs: ctx.upstreamTimeoutMs,
    },
    headerCtx: {
      via: ctx.via,
      trustForwarded: ctx.trustForwarded,
      remoteAddress: undefined,
      proto: "http",
      keepUpgrade: false,
    },
  };

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const r = new RoutedRequest(path, req, res);
    r.track(res);
    // While draining, answer what is already here but let no connection stay open for more.
    if (ctx.isDraining()) res.shouldKeepAlive = false;

    const refused = r.prepare(false);
    if (refused !== undefined) {
      writeProxyError(res, refused, ctx.via);
      return;
    }
    const first = r.pool.pick(clock.now());
    if (!first) {
      writeProxyError(res, "NO_SERVER", ctx.via);
      r.endScope(503, "NO_SERVER", undefined, 0);
      return;
    }
    r.decision(first.member.dataUrl, first.score);
    if (ctx.mode === "redirect") r.redirect(first.member);
    else r.proxy(first.member);
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (code: ErrorCode) => {
      socket.end(
        `HTTP/1.1 ${code === "NO_SERVER" ? "503 Service Unavailable" : "400 Bad Request"}\r\n${PROXY_ERROR_HEADER}: ${code}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
    };
    if (ctx.isDraining()) return refuse("NO_SERVER");
    const r = new RoutedRequest(path, req, undefined);
    const refused = r.prepare(true);
    if (refused !== undefined) return refuse(refused);
    const pool = r.pool;
    const pick = pool.pick(clock.now());
    const url = pick ? new URL(pick.member.dataUrl) : undefined;
    if (!pick || !url || url.protocol !== "http:") {
      r.endScope(503, "NO_SERVER", undefined, 0);
      return refuse("NO_SERVER");
    }
    const m = pick.member;
    r.decision(m.dataUrl, pick.score);
    ctx.onRequestStart();
    m.stats.onRequestStart();
    upgraded.add(socket);
    const t0 = clock.now();
    forwardUpgrade(
      req,
      socket,
      head,
      { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 80) },
      r.headers,
      ctx.via,
      ctx.connectTimeoutMs,
      (outcome, status) => {
        const failed = outcome !== "ok";
        if (outcome === "UPSTREAM_UNREACHABLE") pool.onConnectFailure(m.id, outcome, clock.now());
        m.stats.onRequestEnd(clock.now(), failed ? undefined : clock.now() - t0, failed);
        upgraded.delete(socket);
        ctx.onRequestEnd();
        r.endScope(status, outcome, m.dataUrl, 1);
      },
    );
  }

  const upgraded = new Set<Duplex>();
  const closeUpgrades = () => {
    for (const s of upgraded) s.destroy();
  };

  return { onRequest, onUpgrade, closeUpgrades };
}
