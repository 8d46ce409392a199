/**
 * Readiness of the app, checked on an unref'd timer. By default a TCP connect to its port: the
 * cheapest check that says "something accepts connections there" without guessing a health path
 * the app may not have; the data path itself reports anything worse (502/504 with x-tasklb-error).
 *
 * With a health path (`--app-health-path`), each check is `GET <path>` instead, and only a 2xx or
 * 3xx status within the timeout counts: an app that accepts connections but is broken (answers
 * 500, or hangs) then leaves rotation too. Each check uses a new connection with
 * `Connection: close`, like kubelet's HTTP probes: at one request a second a kept-alive connection
 * would save one loopback handshake, but it would not notice an app that has stopped accepting new
 * connections, and it would race the app's own keep-alive timeout (a reused socket the app is
 * closing turns into a false "unreachable"). A probe never holds more than one connection.
 */
import { request, type ClientRequest, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";

export interface AppProbe {
  /** Whether the last check reached the app (false until the first check succeeds). */
  readonly reachable: boolean;
  /** Runs one check now; resolves with its result. */
  check(): Promise<boolean>;
  start(): void;
  /** Stops the timer and cuts a check in flight (which then changes nothing). */
  close(): void;
}

export interface AppProbeOptions {
  readonly host: string;
  readonly port: number;
  /** `GET` this path (e.g. `/healthz`) instead of a TCP connect; empty or absent: connect only. */
  readonly healthPath?: string | undefined;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /**
   * Called when the result changes, and once for the first result (so an app that is down or
   * unhealthy from the start is reported too). `reason` says why, e.g. `HTTP 503`,
   * `timeout after 1000 ms`, `connect error ECONNREFUSED`.
   */
  readonly onChange?: (reachable: boolean, reason: string) => void;
}

/** How much of a health answer's body is read (and discarded) before the connection is dropped. */
export const HEALTH_BODY_LIMIT_BYTES = 16 * 1024;
export const PROBE_USER_AGENT = "tasklb-sidecar-probe";

interface Result {
  readonly ok: boolean;
  readonly reason: string;
  /** Cut by close(): says nothing about the app. */
  readonly aborted?: boolean;
}

interface Attempt {
  readonly result: Promise<Result>;
  abort(): void;
}

const ABORTED: Result = { ok: false, reason: "probe closed", aborted: true };

function errorText(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown } | null;
  return typeof e?.code === "string" ? e.code : String(e?.message ?? err);
}

/** The Host field for the app: its host (IPv6 in brackets) and the port unless it is 80. */
function hostHeader(host: string, port: number): string {
  const h = host.includes(":") ? `[${host}]` : host;
  return port === 80 ? h : `${h}:${port}`;
}

function connectOnce(opts: AppProbeOptions): Attempt {
  let finish: (r: Result) => void = () => {};
  const result = new Promise<Result>((resolve) => {
    const socket: Socket = connect({ host: opts.host, port: opts.port });
    socket.unref();
    let done = false;
    finish = (r) => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(opts.timeoutMs, () =>
      finish({ ok: false, reason: `timeout after ${opts.timeoutMs} ms` }),
    );
    socket.once("connect", () => finish({ ok: true, reason: "connected" }));
    // `on`, not `once`: an error after finish must still find a listener.
    socket.on("error", (err) => finish({ ok: false, reason: `connect error ${errorText(err)}` }));
  });
  return { result, abort: () => finish(ABORTED) };
}

function httpOnce(opts: AppProbeOptions, path: string): Attempt {
  let finish: (r: Result) => void = () => {};
  const result = new Promise<Result>((resolve) => {
    let done = false;
    let req: ClientRequest | undefined;
    let connected = false;
    let status: Result | undefined;
    // One deadline for the whole exchange (connect, headers, body); a socket idle timeout would
    // let an app that trickles bytes hold the probe forever.
    const timer = setTimeout(
      () => finish(status ?? { ok: false, reason: `timeout after ${opts.timeoutMs} ms` }),
      opts.timeoutMs,
    );
    timer.unref();
    finish = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req?.destroy();
      resolve(r);
    };
    const fail = (err: unknown) =>
      finish({ ok: false, reason: `${connected ? "error" : "connect error"} ${errorText(err)}` });
    try {
      req = request({
        host: opts.host,
        port: opts.port,
        method: "GET",
        path,
        agent: false,
        setHost: false,
        headers: {
          host: hostHeader(opts.host, opts.port),
          "user-agent": PROBE_USER_AGENT,
          accept: "*/*",
          connection: "close",
        },
      });
    } catch (err) {
      // Only a path Node refuses gets here; the configuration is validated before.
      fail(err);
      return;
    }
    req.on("socket", (socket: Socket) => {
      socket.unref();
      if (socket.connecting) socket.once("connect", () => (connected = true));
      else connected = true;
    });
    req.on("error", fail);
    req.on("response", (res: IncomingMessage) => {
      const code = res.statusCode ?? 0;
      status = { ok: code >= 200 && code < 400, reason: `HTTP ${code}` };
      // The status decides; the body is read only so that a normal answer ends normally, and
      // dropped once it is larger than a health answer has any reason to be.
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > HEALTH_BODY_LIMIT_BYTES) finish(status!);
      });
      res.on("end", () => finish(status!));
      // Cut after the status arrived (reset, or our own destroy): the status still stands.
      res.on("error", () => finish(status!));
      res.on("close", () => finish(status!));
    });
    req.end();
  });
  return { result, abort: () => finish(ABORTED) };
}

export function createAppProbe(opts: AppProbeOptions): AppProbe {
  const healthPath = opts.healthPath === "" ? undefined : opts.healthPath;
  let reachable = false;
  let reported = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;
  let current: Attempt | undefined;

  const set = (r: Result): boolean => {
    if (r.aborted) return reachable;
    if (r.ok !== reachable || !reported) {
      reported = true;
      reachable = r.ok;
      try {
        opts.onChange?.(r.ok, r.reason);
      } catch {
        // A logging failure must not turn into an unhandled rejection on the timer.
      }
    }
    return reachable;
  };

  const check = (): Promise<boolean> => {
    // Overlapping checks would only pile up connections on a slow app: share the one under way.
    if (running) return running;
    const attempt = healthPath === undefined ? connectOnce(opts) : httpOnce(opts, healthPath);
    current = attempt;
    running = attempt.result.then(set).finally(() => {
      running = undefined;
      if (current === attempt) current = undefined;
    });
    return running;
  };

  return {
    get reachable() {
      return reachable;
    },
    check,
    start() {
      if (timer) return;
      void check();
      timer = setInterval(() => void check(), opts.intervalMs);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      current?.abort();
    },
  };
}
