/**
 * The sidecar's configuration, declared once. The same list drives parsing (flags > `TASKLB_*`
 * environment > `--config` JSON file > defaults), `--help`, docs/sidecar.md and the checks the
 * deploy manifests are tested with. {@link loadSidecarConfig} validates everything, including
 * combinations of options, and returns a frozen object; anything wrong is a ConfigError that says
 * which option, from which source, and why.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { ConfigError } from "../shared/errors.js";
import { loadOptions, parseUrl, type HostPort, type OptionSpec } from "../shared/config.js";
import { LOG_LEVELS, type LogLevel } from "../shared/log.js";

export const SIDECAR_COMMAND = "sidecar";
export const SIDECAR_SUMMARY =
  "Run beside an application server: proxy every call to it, time top-level calls by causality ID " +
  "(W3C trace-id), and serve the load report on a separate control port.";

export const SIDECAR_OPTIONS: readonly OptionSpec[] = Object.freeze([
  {
    key: "app",
    flag: "app",
    type: "url",
    required: true,
    protocols: ["http:"],
    help: "the application server to forward to, e.g. http://127.0.0.1:3000",
  },
  {
    key: "appHealthPath",
    flag: "app-health-path",
    type: "string",
    help: "readiness: GET this path on the app (e.g. /healthz) and count only 2xx/3xx within 1 s as ready (default: a TCP connect to the app's port)",
  },
  {
    key: "listen",
    flag: "listen",
    type: "host-port",
    default: Object.freeze({ host: "0.0.0.0", port: 8080 }),
    help: "data port: where clients (or routers) send requests",
  },
  {
    key: "control",
    flag: "control",
    type: "host-port",
    default: Object.freeze({ host: "0.0.0.0", port: 9901 }),
    help: "control port: GET /v1/load, /livez, /readyz, /metrics",
  },
  {
    key: "token",
    flag: "token",
    type: "string",
    secret: true,
    help: "shared token required on /v1/load and sent when registering with routers",
  },
  {
    key: "tokenFile",
    flag: "token-file",
    type: "string",
    help: "read the token from this file instead (trailing whitespace removed)",
  },
  {
    key: "router",
    flag: "router",
    type: "list",
    default: Object.freeze([]),
    help: "router admin URLs (comma-separated) to register this sidecar with",
  },
  {
    key: "advertiseHost",
    flag: "advertise-host",
    type: "string",
    help: "host routers use to reach this sidecar (default: the listen host, or the hostname when listening on all addresses)",
  },
  {
    key: "trustForwarded",
    flag: "trust-forwarded",
    type: "boolean",
    default: false,
    help: "keep incoming X-Forwarded-*/Forwarded headers (only behind a trusted proxy or router)",
  },
  {
    key: "maxConcurrent",
    flag: "max-concurrent",
    type: "integer",
    default: 0,
    min: 0,
    help: "calls in flight above which new calls are shed with 503 + Retry-After (0 = unlimited)",
  },
  {
    key: "headersTimeoutMs",
    flag: "headers-timeout-ms",
    type: "integer",
    default: 10_000,
    min: 100,
    help: "time a client has to send the request headers (slow clients get 408)",
  },
  {
    key: "requestTimeoutMs",
    flag: "request-timeout-ms",
    type: "integer",
    default: 300_000,
    min: 0,
    help: "time a client has to send the whole request, body included (0 = no limit)",
  },
  {
    key: "maxHeaderSize",
    flag: "max-header-size",
    type: "integer",
    default: 16_384,
    min: 1024,
    max: 1_048_576,
    help: "largest request header block in bytes (larger gets 431)",
  },
  {
    key: "upstreamTimeoutMs",
    flag: "upstream-timeout-ms",
    type: "integer",
    default: 60_000,
    min: 1,
    help: "time the app has to start answering, and the longest pause within its response body (504)",
  },
  {
    key: "upstreamKeepaliveMs",
    flag: "upstream-keepalive-ms",
    type: "integer",
    default: 4_000,
    min: 1,
    help: "idle time after which a connection to the app is closed; keep it below the app's keep-alive timeout",
  },
  {
    key: "keepaliveTimeoutMs",
    flag: "keepalive-timeout-ms",
    type: "integer",
    default: 65_000,
    min: 1,
    help: "idle time after which a client connection is closed; keep it above the clients' and routers' idle timeouts",
  },
  {
    key: "drainGraceMs",
    flag: "drain-grace-ms",
    type: "integer",
    default: 25_000,
    min: 0,
    help: "on SIGTERM, how long in-flight calls may take to finish before connections are cut",
  },
  {
    key: "maxTrackedCalls",
    flag: "max-tracked-calls",
    type: "integer",
    default: 10_000,
    min: 1,
    help: "in-flight calls the nesting table holds; beyond it the least recently used causality IDs are forgotten",
  },
  {
    key: "callMaxAgeMs",
    flag: "call-max-age-ms",
    type: "integer",
    default: 600_000,
    min: 1,
    help: "age after which a causality ID leaves the nesting table (its calls then end as top-level)",
  },
  {
    key: "piggyback",
    flag: "piggyback",
    type: "boolean",
    default: true,
    help: "answer x-tasklb-load on responses to callers that ask with the token (routers)",
  },
  {
    key: "registerIntervalMs",
    flag: "register-interval-ms",
    type: "integer",
    default: 10_000,
    min: 100,
    help: "how often to (re-)register with each --router",
  },
  {
    key: "logLevel",
    flag: "log-level",
    type: "enum",
    default: "info",
    choices: LOG_LEVELS,
    help: "log verbosity: debug, info, warn, error or silent",
  },
] satisfies OptionSpec[]);

export interface SidecarConfig {
  /** The app's origin, e.g. http://127.0.0.1:3000 (path always "/"). */
  readonly app: URL;
  /** Readiness check path on the app (`GET`, 2xx/3xx = ready); undefined: a TCP connect only. */
  readonly appHealthPath: string | undefined;
  readonly listen: HostPort;
  readonly control: HostPort;
  /** Resolved from --token or --token-file; undefined when neither is set. */
  readonly token: string | undefined;
  readonly router: readonly URL[];
  readonly advertiseHost: string;
  readonly trustForwarded: boolean;
  readonly maxConcurrent: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxHeaderSize: number;
  readonly upstreamTimeoutMs: number;
  readonly upstreamKeepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly drainGraceMs: number;
  readonly maxTrackedCalls: number;
  readonly callMaxAgeMs: number;
  readonly piggyback: boolean;
  readonly registerIntervalMs: number;
  readonly logLevel: LogLevel;
}

interface RawSidecarOptions extends Omit<SidecarConfig, "token" | "router" | "advertiseHost"> {
  readonly token: string | undefined;
  readonly tokenFile: string | undefined;
  readonly router: readonly string[];
  readonly advertiseHost: string | undefined;
}

const ALL_ADDRESSES = new Set(["0.0.0.0", "::", "[::]", ""]);
export const MAX_HEALTH_PATH_LENGTH = 1024;

/** The defaults as a config object (for tests and embedding): `{ ...defaultSidecarConfig(app), ... }`. */
export function defaultSidecarConfig(app: string): SidecarConfig {
  return loadSidecarConfig(["--app", app], {});
}

export function loadSidecarConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, "utf8"),
): SidecarConfig {
  const raw = loadOptions<RawSidecarOptions>({
    command: SIDECAR_COMMAND,
    specs: SIDECAR_OPTIONS,
    argv,
    env,
    readFile,
  });
  const fail = (msg: string): never => {
    throw new ConfigError(`${SIDECAR_COMMAND}: ${msg}`);
  };

  if (raw.app.pathname !== "/" || raw.app.search !== "" || raw.app.hash !== "") {
    fail(
      `--app must be an origin without a path, e.g. http://127.0.0.1:3000 (got ${JSON.stringify(raw.app.href)})`,
    );
  }
  if (raw.app.username !== "" || raw.app.password !== "") fail("--app must not carry credentials");

  let appHealthPath = raw.appHealthPath;
  if (appHealthPath === "") appHealthPath = undefined;
  if (appHealthPath !== undefined) {
    const got = `(got ${JSON.stringify(appHealthPath.length > 80 ? appHealthPath.slice(0, 80) + "…" : appHealthPath)})`;
    if (!appHealthPath.startsWith("/")) fail(`--app-health-path must start with "/" ${got}`);
    if (appHealthPath.length > MAX_HEALTH_PATH_LENGTH)
      fail(`--app-health-path must be at most ${MAX_HEALTH_PATH_LENGTH} characters ${got}`);
    // Printable ASCII only: it goes on the request line as is (percent-encode anything else).
    if (!/^[\x21-\x7e]*$/.test(appHealthPath))
      fail(
        `--app-health-path must not contain spaces, control or non-ASCII characters (percent-encode them) ${got}`,
      );
    if (appHealthPath.includes("#")) fail(`--app-health-path must not contain a fragment (#) ${got}`);
  }

  let token = raw.token;
  if (token !== undefined && raw.tokenFile !== undefined)
    fail("give either --token or --token-file, not both");
  if (raw.tokenFile !== undefined) {
    try {
      token = readFile(raw.tokenFile).trimEnd();
    } catch (err) {
      fail(`cannot read --token-file ${raw.tokenFile}: ${(err as Error).message}`);
    }
    if (token === "") fail(`--token-file ${raw.tokenFile} is empty`);
  }
  if (token === "") token = undefined;

  const router = raw.router.map((text) =>
    parseUrl(text, ["http:", "https:"], (why) => fail(`--router entry ${JSON.stringify(text)} ${why}`)),
  );

  if (raw.requestTimeoutMs > 0 && raw.headersTimeoutMs > raw.requestTimeoutMs) {
    fail(
      `--headers-timeout-ms (${raw.headersTimeoutMs}) must not exceed --request-timeout-ms (${raw.requestTimeoutMs})`,
    );
  }
  if (raw.listen.port !== 0 && raw.listen.port === raw.control.port && raw.listen.host === raw.control.host) {
    fail(`--listen and --control must be different ports (both ${raw.listen.port})`);
  }

  let advertiseHost = raw.advertiseHost;
  if (advertiseHost === undefined || advertiseHost === "") {
    advertiseHost = ALL_ADDRESSES.has(raw.listen.host) ? hostname() : raw.listen.host;
  } else if (/[\s/?#@]/.test(advertiseHost)) {
    fail(`--advertise-host must be a host name or address (got ${JSON.stringify(advertiseHost)})`);
  }

  return Object.freeze({
    app: raw.app,
    appHealthPath,
    listen: raw.listen,
    control: raw.control,
    token,
    router: Object.freeze(router),
    advertiseHost,
    trustForwarded: raw.trustForwarded,
    maxConcurrent: raw.maxConcurrent,
    headersTimeoutMs: raw.headersTimeoutMs,
    requestTimeoutMs: raw.requestTimeoutMs,
    maxHeaderSize: raw.maxHeaderSize,
    upstreamTimeoutMs: raw.upstreamTimeoutMs,
    upstreamKeepaliveMs: raw.upstreamKeepaliveMs,
    keepaliveTimeoutMs: raw.keepaliveTimeoutMs,
    drainGraceMs: raw.drainGraceMs,
    maxTrackedCalls: raw.maxTrackedCalls,
    callMaxAgeMs: raw.callMaxAgeMs,
    piggyback: raw.piggyback,
    registerIntervalMs: raw.registerIntervalMs,
    logLevel: raw.logLevel,
  });
}
