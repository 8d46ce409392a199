/**
 * The sidecar: a transparent HTTP proxy beside one application server that times every call by
 * causality ID (the channel hook of COM+ load balancing), plus its control port.
 *
 * `createSidecar(config, deps)` builds everything and binds nothing; `listen()` binds the data and
 * control ports, `drain()` is the SIGTERM path and `close()` releases everything. Tests build the
 * same object the CLI does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { randomBytes } from "node:crypto";
import { STATUS_CODES } from "node:http";
import { Pool } from "undici";
import type {
  CallScope,
  SidecarCallEnd,
  SidecarCallObserver,
  SidecarCallStart,
} from "../shared/call-observer.js";
import { createSecretCheck } from "../shared/auth.js";
import { monotonicClock, type Clock } from "../shared/clock.js";
import { ErrorCodes, PROXY_ERROR_HEADER, type ErrorCode } from "../shared/errors.js";
import {
  forward,
  type ForwardObserver,
  type ForwardOptions,
  type ForwardOutcome,
} from "../shared/forward.js";
import { forwardRequestHeaders, rawHeaderValues, viaHasLoop } from "../shared/headers.js";
import { LOAD_HEADER, type LoadReport, type SidecarState } from "../shared/load-report.js";
import { FLAG_SAMPLED } from "../shared/trace-context.js";
import { silentLogger, type Logger } from "../shared/log.js";
import { writeProxyError } from "../shared/proxy-response.js";
import { forwardUpgrade } from "../shared/upgrade.js";
import { createAppProbe, type AppProbe } from "./app-probe.js";
import type { TrackedCall } from "./causality.js";
import type { SidecarConfig } from "./config.js";
import { createControlHandler, type ControlRoutes } from "./control-server.js";
import { createCpuSampler, type CpuSampler } from "./cpu-sampler.js";
import { LoadTracker } from "./load-tracker.js";
import { createRegistration, type Registration } from "./registration.js";
import {
  appendTraceparent,
  readIncomingTrace,
  traceHeadersToSkip,
  type IncomingTrace,
} from "./trace-propagation.js";

export interface SidecarDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Telemetry seam; with none installed the request path does no telemetry work at all. */
  readonly observer?: SidecarCallObserver;
  /** Extra control-port routes, e.g. telemetry's `{ "/metrics": … }`. */
  readonly controlRoutes?: ControlRoutes;
  readonly cpu?: CpuSampler;
  /** Fixed epoch (tests); random otherwise. */
  readonly epoch?: string;
  /** How often the app's port is probed for readiness (ms). */
  readonly appProbeIntervalMs?: number;
}

export interface SidecarAddresses {
  /** Bound data address (actual port when configured with 0). */
  readonly data: { readonly host: string; readonly port: number };
  readonly control: { readonly host: string; readonly port: number };
  /** Advertised URLs (what routers use). */
  readonly dataUrl: string;
  readonly controlUrl: string;
}

export interface Sidecar {
  listen(): Promise<SidecarAddresses>;
  /**
   * Graceful shutdown: readiness fails and the report says `draining`, the data port stops
   * accepting, idle keep-alive connections close, in-flight calls get up to `drainGraceMs` to
   * finish (then their connections are cut), and routers are told to forget this sidecar.
   */
  drain(): Promise<{ readonly unfinishedCalls: number }>;
  /** Releases everything at once (ports, timers, upstream pool). */
  close(): Promise<void>;
  report(): LoadReport;
  readonly epoch: string;
  readonly state: SidecarState;
  readonly addresses: SidecarAddresses | undefined;
  readonly tracker: LoadTracker;
}

const RETRY_AFTER_SECONDS = "1";
// Both are ours: the load header is added by us, and only we mark an answer as proxy-made (a router
// retries such answers elsewhere, so an app must not be able to forge one).
const STRIP_FROM_APP: ReadonlySet<string> = new Set([LOAD_HEADER, PROXY_ERROR_HEADER]);

function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

export function createSidecar(config: SidecarConfig, deps: SidecarDeps = {}): Sidecar {
  const clock = deps.clock ?? monotonicClock;
  const logger = deps.logger ?? silentLogger;
  const observer = deps.observer;
  const tracker = new LoadTracker({
    clock,
    cpu: deps.cpu ?? createCpuSampler(),
    maxTrackedCalls: config.maxTrackedCalls,
    callMaxAgeMs: config.callMaxAgeMs,
    ...(deps.epoch !== undefined ? { epoch: deps.epoch } : {}),
  });

  // Via pseudonym unique to this process: seeing it come back in a request means a loop.
  const pseudonym = `tasklb-${randomBytes(6).toString("hex")}`;
  const viaFor11 = `1.1 ${pseudonym}`;
  const viaFor10 = `1.0 ${pseudonym}`;

  const appHost = config.app.hostname.replace(/^\[|\]$/g, "");
  const appPort = config.app.port === "" ? 80 : Number(config.app.port);
  const pool = new Pool(config.app.origin, {
    // Idle upstream connections close before the app would close them, so a request never races
    // a socket the app is closing (Node's default keep-alive is 5 s).
    keepAliveTimeout: config.upstreamKeepaliveMs,
    keepAliveMaxTimeout: config.upstreamKeepaliveMs,
    headersTimeout: config.upstreamTimeoutMs,
    bodyTimeout: config.upstreamTimeoutMs,
    connect: { timeout: Math.min(config.upstreamTimeoutMs, 10_000) },
  });
  const forwardOptions: ForwardOptions = {
    via: viaFor11,
    stripResponseHeaders: STRIP_FROM_APP,
    headersTimeoutMs: config.upstreamTimeoutMs,
    bodyTimeoutMs: config.upstreamTimeoutMs,
  };

  let state: SidecarState = "serving";
  let addresses: SidecarAddresses | undefined;
  let registration: Registration | undefined;
  let drainWaiter: (() => void) | undefined;
  const upgradeSockets = new Set<Duplex>();

  const probe: AppProbe = createAppProbe({
    host: appHost,
    port: appPort,
    healthPath: config.appHealthPath,
    intervalMs: deps.appProbeIntervalMs ?? 1_000,
    timeoutMs: 1_000,
    onChange: (reachable, reason) =>
      logger[reachable ? "info" : "warn"](reachable ? "app reachable" : "app unreachable", {
        app: config.app.origin,
        check: config.appHealthPath === undefined ? "connect" : `GET ${config.appHealthPath}`,
        reason,
      }),
  });

  // ---- call lifecycle: start once, end once ------------------------------------------------

  /** One call on the data port. Implements the forward observer so no closure is made per call. */
  class Call implements ForwardObserver {
    readonly tracked: TrackedCall;
    readonly scope: CallScope<SidecarCallEnd> | undefined;
    /** The caller (a router) asked for the load report on the response; see {@link wantsLoad}. */
    piggyback = false;
    constructor(tracked: TrackedCall, scope: CallScope<SidecarCallEnd> | undefined) {
      this.tracked = tracked;
      this.scope = scope;
    }

    onResponseStart(_status: number, _raw: readonly Buffer[], out: string[]): void {
      if (this.piggyback) out.push(LOAD_HEADER, tracker.loadHeader(state));
    }

    onEnd(outcome: ForwardOutcome, status: number): void {
      endCall(this, status, outcome);
    }
  }

  function startCall(req: IncomingMessage, trace: IncomingTrace, upgrade: boolean): Call {
    const tracked = tracker.callStart(trace.traceId);
    let scope: CallScope<SidecarCallEnd> | undefined;
    if (observer !== undefined) {
      try {
        scope = observer.onCallStart(new CallStartView(req, trace, upgrade));
      } catch (err) {
        logger.debug("call observer failed", { error: err as Error });
      }
    }
    return new Call(tracked, scope);
  }

  // The piggybacked report goes only to a caller that asks for it with `x-tasklb-load: <token>`
  // (routers do; `1` when no token is set): the figures are as private as the token-guarded
  // /v1/load, and plain clients are spared the bytes.
  const loadAskAccepted = createSecretCheck(config.token);
  function wantsLoad(req: IncomingMessage): boolean {
    if (!config.piggyback) return false;
    const ask = rawHeaderValues(req.rawHeaders, LOAD_HEADER);
    return ask !== undefined && ask.length === 1 && loadAskAccepted(ask[0]);
  }

  function endCall(call: Call, status: number, outcome: string): void {
    const result = tracker.callEnd(call.tracked, status, outcome);
    if (result === undefined) return;
    if (call.scope !== undefined) {
      try {
        call.scope.end({ durationMs: result.durationMs, topLevel: result.topLevel, status, outcome });
      } catch (err) {
        logger.debug("call observer failed", { error: err as Error });
      }
    }
    if (state === "draining") onDrainProgress();
  }

  // ---- the request path --------------------------------------------------------------------
  //
  // Composed here, in this order:
  //  1. causality  the call's causality ID: a valid incoming trace-id, or a new trace.
  //  2. timing     the call enters the load tracker (and telemetry) before anything can refuse or
  //                fail it, so every call a client sees — forwarded or answered by us — is timed
  //                and counted exactly once, and its end is guaranteed by step 5.
  //  3. limits     answered by the sidecar itself: a loop (our Via came back, 508) and shedding
  //                above --max-concurrent (503 + Retry-After). Refused calls are cheap but counted.
  //  4. forward    relayed to the app over the upstream pool, streaming both ways; the forwarder
  //                ends the call once, on completion, client abort or upstream failure.
  //  5. rescue     anything thrown on the way becomes a proxy error (x-tasklb-error) and ends the
  //                call, instead of a crashed process or a hung client.

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const trace = readIncomingTrace(req.rawHeaders); // 1
    const call = startCall(req, trace, false); // 2
    const via = req.httpVersionMinor === 0 ? viaFor10 : viaFor11;
    try {
      const refused = refusal(req); // 3
      if (refused !== undefined) {
        writeProxyError(
          res,
          refused,
          via,
          refused === "OVERLOADED" ? { "retry-after": RETRY_AFTER_SECONDS } : undefined,
        );
        endCall(call, res.statusCode, refused);
        return;
      }
      if (state === "draining") res.shouldKeepAlive = false;
      call.piggyback = wantsLoad(req);
      const spanId = call.scope?.spanId;
      const headers: string[] = [];
      const hasBody = forwardRequestHeaders(
        req.rawHeaders,
        {
          via,
          trustForwarded: config.trustForwarded,
          remoteAddress: req.socket.remoteAddress,
          proto: "http",
        },
        traceHeadersToSkip(trace, spanId),
        headers,
      );
      appendTraceparent(trace, spanId, call.scope?.sampled, headers);
      forward(req, res, pool, headers, hasBody, forwardOptions, call); // 4
    } catch (err) {
      // 5
      logger.error("request failed in the sidecar", { error: err as Error, target: req.url });
      if (!res.headersSent) writeProxyError(res, "UPSTREAM_ERROR", via);
      else res.destroy();
      endCall(call, res.headersSent ? res.statusCode : 0, "UPSTREAM_ERROR");
    }
  }

  function refusal(req: IncomingMessage): ErrorCode | undefined {
    // Raw headers, not req.headers: that object is built lazily and this path never needs it.
    const viaHeader = rawHeaderValues(req.rawHeaders, "via");
    if (viaHeader !== undefined && viaHasLoop(viaHeader, pseudonym)) return "LOOP_DETECTED";
    // The call itself is already in flight, hence ">".
    if (config.maxConcurrent > 0 && tracker.inFlight > config.maxConcurrent) return "OVERLOADED";
    return undefined;
  }

  /** WebSocket and other HTTP Upgrades: the same steps, over a raw socket; one call per connection. */
  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const trace = readIncomingTrace(req.rawHeaders);
    const call = startCall(req, trace, true);
    const via = req.httpVersionMinor === 0 ? viaFor10 : viaFor11;
    try {
      const refused = refusal(req);
      if (refused !== undefined) {
        writeRawProxyError(socket, refused, via);
        endCall(call, ErrorCodes[refused].status, refused);
        return;
      }
      const spanId = call.scope?.spanId;
      const headers: string[] = [];
      forwardRequestHeaders(
        req.rawHeaders,
        {
          via,
          trustForwarded: config.trustForwarded,
          remoteAddress: req.socket.remoteAddress,
          proto: "http",
          keepUpgrade: true,
        },
        traceHeadersToSkip(trace, spanId),
        headers,
      );
      appendTraceparent(trace, spanId, call.scope?.sampled, headers);
      upgradeSockets.add(socket);
      forwardUpgrade(
        req,
        socket,
        head,
        { host: appHost, port: appPort },
        headers,
        viaFor11,
        Math.min(config.upstreamTimeoutMs, 10_000),
        (outcome, status) => {
          upgradeSockets.delete(socket);
          endCall(call, status, outcome);
        },
      );
    } catch (err) {
      logger.error("upgrade failed in the sidecar", { error: err as Error, target: req.url });
      socket.destroy();
      upgradeSockets.delete(socket);
      endCall(call, 0, "UPSTREAM_ERROR");
    }
  }

  // ---- servers -----------------------------------------------------------------------------

  const dataServer: Server = createServer(
    {
      maxHeaderSize: config.maxHeaderSize,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // Node checks the two timeouts above only this often (default 30 s): slow clients would
      // otherwise hold connections far longer than configured.
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(config.headersTimeoutMs / 4))),
      keepAlive: true,
      noDelay: true,
    },
    onRequest,
  );
  dataServer.keepAliveTimeout = config.keepaliveTimeoutMs;
  dataServer.on("upgrade", onUpgrade);

  const controlServer: Server = createServer(
    { headersTimeout: 5_000, requestTimeout: 10_000, connectionsCheckingInterval: 1_000, noDelay: true },
    createControlHandler({
      token: config.token,
      report: () => report(),
      readiness: () => ({ state, appReachable: probe.reachable }),
      ...(deps.controlRoutes !== undefined ? { routes: deps.controlRoutes } : {}),
      onError: (err) => logger.error("control route failed", { error: err as Error }),
    }),
  );
  controlServer.keepAliveTimeout = 5_000;

  function report(): LoadReport {
    return tracker.report({ state, appReachable: probe.reachable, dataUrl: addresses?.dataUrl ?? "" });
  }

  function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(new Error(`cannot listen on ${urlHost(host)}:${port}: ${err.message}`, { cause: err }));
      server.once("error", onError);
      server.listen(port, host, () => {
        server.off("error", onError);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  // ---- drain -------------------------------------------------------------------------------

  function onDrainProgress(): void {
    // Connections that just finished their last call would otherwise idle until keep-alive ends.
    dataServer.closeIdleConnections();
    if (tracker.inFlight === 0) drainWaiter?.();
  }

  let draining: Promise<{ unfinishedCalls: number }> | undefined;

  async function drainOnce(): Promise<{ unfinishedCalls: number }> {
    state = "draining";
    logger.info("draining", { inFlight: tracker.inFlight, graceMs: config.drainGraceMs });
    const deregistered = registration?.stop() ?? Promise.resolve();
    // Stop accepting; Node also closes connections that are idle right now.
    dataServer.close();
    dataServer.closeIdleConnections();
    if (tracker.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, config.drainGraceMs);
        drainWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      drainWaiter = undefined;
    }
    const unfinishedCalls = tracker.inFlight;
    if (unfinishedCalls > 0) logger.warn("drain grace expired; cutting connections", { unfinishedCalls });
    dataServer.closeAllConnections();
    for (const s of upgradeSockets) s.destroy();
    await deregistered;
    logger.info("drained", { unfinishedCalls });
    return { unfinishedCalls };
  }

  let closed: Promise<void> | undefined;

  return {
    get epoch() {
      return tracker.epoch;
    },
    get state() {
      return state;
    },
    get addresses() {
      return addresses;
    },
    tracker,
    report,

    async listen() {
      const data = await listenOn(dataServer, config.listen.host, config.listen.port);
      let control: AddressInfo;
      try {
        control = await listenOn(controlServer, config.control.host, config.control.port);
      } catch (err) {
        dataServer.close();
        throw err;
      }
      const adv = urlHost(config.advertiseHost);
      addresses = Object.freeze({
        data: { host: data.address, port: data.port },
        control: { host: control.address, port: control.port },
        dataUrl: `http://${adv}:${data.port}`,
        controlUrl: `http://${adv}:${control.port}`,
      });
      probe.start();
      if (config.router.length > 0) {
        registration = createRegistration({
          routers: config.router,
          token: config.token,
          dataUrl: addresses.dataUrl,
          controlUrl: addresses.controlUrl,
          intervalMs: config.registerIntervalMs,
          logger,
          clock,
        });
        registration.start();
      }
      return addresses;
    },

    drain() {
      draining ??= drainOnce();
      return draining;
    },

    close() {
      closed ??= (async () => {
        state = "draining";
        drainWaiter?.();
        probe.close();
        tracker.close();
        await registration?.stop();
        for (const s of upgradeSockets) s.destroy();
        const stopped = (server: Server) =>
          new Promise<void>((resolve) => {
            if (!server.listening) return resolve();
            server.close(() => resolve());
          });
        const both = Promise.all([stopped(dataServer), stopped(controlServer)]);
        dataServer.closeAllConnections();
        controlServer.closeAllConnections();
        await both;
        await pool.destroy().catch(() => undefined);
      })();
      return closed;
    },
  };
}

/**
 * What telemetry sees of a call as it starts, read from the request only when asked: spans read
 * it all, while metrics alone (the default) read nothing, so the common path builds no object of
 * ten fields and asks the socket for no addresses.
 */
class CallStartView implements SidecarCallStart {
  readonly #req: IncomingMessage;
  readonly #trace: IncomingTrace;
  readonly upgrade: boolean;
  constructor(req: IncomingMessage, trace: IncomingTrace, upgrade: boolean) {
    this.#req = req;
    this.#trace = trace;
    this.upgrade = upgrade;
  }
  get method(): string {
    return this.#req.method ?? "GET";
  }
  get target(): string {
    return this.#req.url ?? "/";
  }
  get traceId(): string {
    return this.#trace.traceId;
  }
  get parentSpanId(): string | undefined {
    return this.#trace.parentSpanId;
  }
  get sampled(): boolean {
    return (this.#trace.flags & FLAG_SAMPLED) !== 0;
  }
  get remoteAddress(): string | undefined {
    return this.#req.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.#req.socket.remotePort;
  }
  get serverAddress(): string | undefined {
    return this.#req.socket.localAddress;
  }
  get serverPort(): number | undefined {
    return this.#req.socket.localPort;
  }
}

/** A proxy-made error on a raw socket (Upgrade requests have no ServerResponse). */
function writeRawProxyError(socket: Duplex, code: ErrorCode, via: string): void {
  const spec = ErrorCodes[code];
  const body = JSON.stringify({ error: { code, message: spec.message } });
  const extra = code === "OVERLOADED" ? `retry-after: ${RETRY_AFTER_SECONDS}\r\n` : "";
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status] ?? ""}\r\n${PROXY_ERROR_HEADER}: ${code}\r\nvia: ${via}\r\n${extra}` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}
