/**
 * The router's configuration, declared once. Flags describe the default pool; a `--config` JSON
 * file may hold any flag key plus `pools`, a list of extra pools chosen per request by Host and
 * path prefix. Everything is validated here and frozen, so the rest of the router trusts it.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "../shared/errors.js";
import { loadOptions, parseUrl, type HostPort, type OptionSpec } from "../shared/config.js";
import { LOG_LEVELS, type LogLevel } from "../shared/log.js";

/** Every algorithm name the router accepts (one file each in ./balancers/). */
export const ALGORITHMS = [
  "random",
  "round-robin",
  "task-seconds",
  "cpu",
  "least-request",
  "adaptive",
] as const;
export type AlgorithmName = (typeof ALGORITHMS)[number];
export type RouterMode = "proxy" | "redirect";

export const DEFAULT_POOL = "default";

/**
 * Registrations a router holds at most (all pools together). Each one is a server the router polls
 * every `--poll-interval-ms`, so the bound is on work as much as on memory: 1024 is far above any
 * pool we balance well and far below what would hurt.
 */
export const DEFAULT_MAX_REGISTRATIONS = 1024;

export const ROUTER_OPTIONS: readonly OptionSpec[] = [
  {
    key: "listen",
    flag: "listen",
    type: "host-port",
    default: { host: "0.0.0.0", port: 8000 },
    help: "where clients send requests (data port)",
  },
  {
    key: "admin",
    flag: "admin",
    type: "host-port",
    default: { host: "0.0.0.0", port: 9900 },
    help: "admin API: /v1/servers, /v1/resolve, /v1/register, /livez, /readyz",
  },
  {
    key: "server",
    flag: "server",
    type: "list",
    help: "static servers: DATA_URL or DATA_URL=CONTROL_URL, comma-separated",
  },
  {
    key: "dns",
    flag: "dns",
    type: "list",
    help: "DNS names to resolve into servers: NAME:PORT, comma-separated (e.g. a headless Service)",
  },
  {
    key: "dnsIntervalMs",
    flag: "dns-interval-ms",
    type: "integer",
    default: 5000,
    min: 100,
    help: "how often DNS names are re-resolved",
  },
  {
    key: "sidecarControlPort",
    flag: "sidecar-control-port",
    type: "integer",
    default: 9901,
    min: 1,
    max: 65535,
    help: "control port of a sidecar when only its data URL is known",
  },
  {
    key: "token",
    flag: "token",
    type: "string",
    secret: true,
    help: "shared token: sent to sidecars, required on the admin API",
  },
  {
    key: "tokenFile",
    flag: "token-file",
    type: "string",
    help: "file holding the shared token (instead of --token)",
  },
  {
    key: "algorithm",
    flag: "algorithm",
    type: "enum",
    choices: ALGORITHMS,
    default: "adaptive",
    help: "balancing algorithm of the default pool",
  },
  {
    key: "mode",
    flag: "mode",
    type: "enum",
    choices: ["proxy", "redirect"],
    default: "proxy",
    help: "proxy: forward each request; redirect: answer 307 to the chosen server",
  },
  {
    key: "pollIntervalMs",
    flag: "poll-interval-ms",
    type: "integer",
    default: 100,
    min: 10,
    max: 60_000,
    help: "how often every sidecar's /v1/load is polled",
  },
  {
    key: "pollTimeoutMs",
    flag: "poll-timeout-ms",
    type: "integer",
    default: 500,
    min: 10,
    max: 60_000,
    help: "time allowed for one poll",
  },
  {
    key: "maxMisses",
    flag: "max-misses",
    type: "integer",
    default: 3,
    min: 1,
    max: 1000,
    help: "failed polls in a row that take a server out of rotation",
  },
  {
    key: "easeInMs",
    flag: "ease-in-ms",
    type: "integer",
    default: 3000,
    min: 0,
    max: 600_000,
    help: "a new or returning server's traffic ramps up over this time",
  },
  {
    key: "retries",
    flag: "retries",
    type: "integer",
    default: 2,
    min: 0,
    max: 10,
    help: "other servers tried when one cannot be reached",
  },
  {
    key: "upstreamTimeoutMs",
    flag: "upstream-timeout-ms",
    type: "integer",
    default: 60_000,
    min: 1,
    help: "time allowed for a server's response headers (504), and between body chunks",
  },
  {
    key: "upstreamKeepaliveMs",
    flag: "upstream-keepalive-ms",
    type: "integer",
    default: 4000,
    min: 1,
    help: "idle keep-alive of connections to sidecars (keep below theirs, 5 s in Node)",
  },
  {
    key: "headersTimeoutMs",
    flag: "headers-timeout-ms",
    type: "integer",
    default: 10_000,
    min: 100,
    help: "time allowed for a client's request headers (408)",
  },
  {
    key: "maxHeaderSize",
    flag: "max-header-size",
    type: "integer",
    default: 16_384,
    min: 1024,
    max: 1_048_576,
    help: "largest request header block accepted from clients (431)",
  },
  {
    key: "trustForwarded",
    flag: "trust-forwarded",
    type: "boolean",
    default: false,
    help: "keep incoming X-Forwarded-*/Forwarded (set when a trusted proxy is in front)",
  },
  {
    key: "drainGraceMs",
    flag: "drain-grace-ms",
    type: "integer",
    default: 10_000,
    min: 0,
    help: "on SIGTERM, time in-flight requests get to finish",
  },
  {
    key: "registrationTtlMs",
    flag: "registration-ttl-ms",
    type: "integer",
    default: 30_000,
    min: 100,
    help: "a registered server is dropped when it does not renew within this time",
  },
  {
    key: "maxRegistrations",
    flag: "max-registrations",
    type: "integer",
    default: DEFAULT_MAX_REGISTRATIONS,
    min: 0,
    max: 100_000,
    help: "self-registered servers held at most (then 507 REGISTRY_FULL; renewals still succeed; 0 disables)",
  },
  {
    key: "logLevel",
    flag: "log-level",
    type: "enum",
    choices: LOG_LEVELS,
    default: "info",
    help: "debug, info, warn, error or silent",
  },
];

/** Where a server is reached: data traffic and its sidecar's control port. */
export interface ServerAddress {
  /** Origin only, e.g. `http://10.0.0.7:8080`; also the server's id. */
  readonly dataUrl: string;
  /** Origin of the sidecar control port, e.g. `http://10.0.0.7:9901`. */
  readonly controlUrl: string;
}

export interface DnsTarget {
  readonly name: string;
  readonly port: number;
}

export interface PoolMatch {
  /** Host header (without port), compared case-insensitively. */
  readonly host?: string;
  /** Path prefix, e.g. `/api/`. */
  readonly pathPrefix?: string;
}

export interface PoolConfig {
  readonly name: string;
  readonly algorithm: AlgorithmName;
  readonly servers: readonly ServerAddress[];
  readonly dns: readonly DnsTarget[];
  /** Undefined for the default pool, which takes every request no other pool matches. */
  readonly match?: PoolMatch;
}

export interface RouterConfig {
  readonly listen: HostPort;
  readonly admin: HostPort;
  readonly server: readonly string[];
  readonly dns: readonly string[];
  readonly dnsIntervalMs: number;
  readonly sidecarControlPort: number;
  /** The effective token (from --token or --token-file); undefined when none is configured. */
  readonly token: string | undefined;
  readonly tokenFile: string | undefined;
  readonly algorithm: AlgorithmName;
  readonly mode: RouterMode;
  readonly pollIntervalMs: number;
  readonly pollTimeoutMs: number;
  readonly maxMisses: number;
  readonly easeInMs: number;
  readonly retries: number;
  readonly upstreamTimeoutMs: number;
  readonly upstreamKeepaliveMs: number;
  readonly headersTimeoutMs: number;
  readonly maxHeaderSize: number;
  readonly trustForwarded: boolean;
  readonly drainGraceMs: number;
  readonly registrationTtlMs: number;
  /** Self-registered servers held at most; 0 refuses every registration. */
  readonly maxRegistrations: number;
  readonly logLevel: LogLevel;
  /** The default pool (from the flags) first, then the pools of the config file, in order. */
  readonly pools: readonly PoolConfig[];
}

/**
 * Parses flags > TASKLB_* env > `--config` file > defaults. Throws ConfigError with a message that
 * names the bad option. `readFile` is injected by tests.
 */
export function loadRouterConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readFile: (path: string) => string = (p) => readFileSync(p, "utf8"),
): RouterConfig {
  // `pools` is structured, so it is taken out of the file before the flat option parser sees it.
  let poolsRaw: unknown;
  let configPath: string | undefined;
  const readWithoutPools = (path: string): string => {
    configPath = path;
    const text = readFile(path);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return text; // loadOptions reports the syntax error
    }
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed) && "pools" in parsed) {
      const { pools, ...rest } = parsed as Record<string, unknown>;
      poolsRaw = pools;
      return JSON.stringify(rest);
    }
    return text;
  };
  const opts = loadOptions<Record<string, unknown>>({
    command: "router",
    specs: ROUTER_OPTIONS,
    argv,
    env,
    readFile: readWithoutPools,
  });

  let token = opts.token as string | undefined;
  const tokenFile = opts.tokenFile as string | undefined;
  if (tokenFile !== undefined) {
    if (token !== undefined) throw new ConfigError("router: give either --token or --token-file, not both");
    try {
      token = readFile(tokenFile).trim();
    } catch (err) {
      throw new ConfigError(`router: cannot read --token-file ${tokenFile}: ${(err as Error).message}`);
    }
    if (token === "") throw new ConfigError(`router: --token-file ${tokenFile} is empty`);
  }
  if (token === "") token = undefined;

  const controlPort = opts.sidecarControlPort as number;
  const defaultPool: PoolConfig = Object.freeze({
    name: DEFAULT_POOL,
    algorithm: opts.algorithm as AlgorithmName,
    servers: Object.freeze(
      ((opts.server as string[] | undefined) ?? []).map((s) => parseServerSpec(s, controlPort, "--server")),
    ),
    dns: Object.freeze(((opts.dns as string[] | undefined) ?? []).map((d) => parseDnsTarget(d, "--dns"))),
  });
  const pools: PoolConfig[] = [defaultPool];
  if (poolsRaw !== undefined) {
    pools.push(...parsePools(poolsRaw, controlPort, `${configPath ?? "config file"}: "pools"`));
  }

  return Object.freeze({
    ...(opts as object),
    server: (opts.server as readonly string[] | undefined) ?? Object.freeze([]),
    dns: (opts.dns as readonly string[] | undefined) ?? Object.freeze([]),
    token,
    tokenFile,
    pools: Object.freeze(pools),
  }) as RouterConfig;
}

/** `DATA_URL` or `DATA_URL=CONTROL_URL`. Only http(s) origins are accepted: never a path. */
export function parseServerSpec(text: string, sidecarControlPort: number, source: string): ServerAddress {
  const eq = text.indexOf("=");
  const dataText = eq >= 0 ? text.slice(0, eq) : text;
  const controlText = eq >= 0 ? text.slice(eq + 1) : undefined;
  const dataUrl = parseOrigin(dataText.trim(), `${source} ${JSON.stringify(text)}`);
  const controlUrl =
    controlText !== undefined
      ? parseOrigin(controlText.trim(), `${source} ${JSON.stringify(text)}`)
      : defaultControlUrl(dataUrl, sidecarControlPort);
  return Object.freeze({ dataUrl, controlUrl });
}

/** The control URL a sidecar has when only its data URL is known: same host, the control port. */
export function defaultControlUrl(dataUrl: string, sidecarControlPort: number): string {
  const u = new URL(dataUrl);
  return `http://${u.hostname}:${sidecarControlPort}`;
}

/** Validates an http(s) URL that names an origin (no credentials, path, query or fragment). */
export function parseOrigin(text: string, source: string): string {
  const fail = (why: string): never => {
    throw new ConfigError(`router: ${source} ${why}`);
  };
  const url = parseUrl(text, ["http:", "https:"], fail);
  if (url.username !== "" || url.password !== "") fail("must not carry credentials");
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.hash !== "") {
    fail("must be an origin such as http://10.0.0.7:8080 (no path or query)");
  }
  return url.origin;
}

function parseDnsTarget(text: string, source: string): DnsTarget {
  const m = /^([A-Za-z0-9.-]+):(\d+)$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new ConfigError(
      `router: ${source} ${JSON.stringify(text)} must be NAME:PORT, e.g. app.default.svc:8080`,
    );
  }
  return Object.freeze({ name: m[1]!, port });
}

const POOL_KEYS = new Set(["name", "algorithm", "servers", "dns", "match"]);

function parsePools(raw: unknown, controlPort: number, source: string): PoolConfig[] {
  if (!Array.isArray(raw)) throw new ConfigError(`router: ${source} must be a list of pools`);
  const names = new Set([DEFAULT_POOL]);
  return raw.map((p: unknown, i) => {
    const where = `${source}[${i}]`;
    if (p === null || typeof p !== "object" || Array.isArray(p))
      throw new ConfigError(`router: ${where} must be an object`);
    const o = p as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!POOL_KEYS.has(k)) throw new ConfigError(`router: ${where} has unknown key "${k}"`);
    }
    if (typeof o.name !== "string" || !/^[a-z0-9][a-z0-9_-]{0,62}$/i.test(o.name)) {
      throw new ConfigError(`router: ${where}.name must be a short name of letters, digits, - or _`);
    }
    if (names.has(o.name)) throw new ConfigError(`router: ${where}.name "${o.name}" is used twice`);
    names.add(o.name);
    const algorithm = o.algorithm ?? "adaptive";
    if (typeof algorithm !== "string" || !(ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new ConfigError(`router: ${where}.algorithm must be one of ${ALGORITHMS.join(", ")}`);
    }
    const servers = stringList(o.servers, `${where}.servers`).map((s) =>
      parseServerSpec(s, controlPort, `${where}.servers`),
    );
    const dns = stringList(o.dns, `${where}.dns`).map((d) => parseDnsTarget(d, `${where}.dns`));
    const m = o.match;
    if (m === null || typeof m !== "object" || Array.isArray(m)) {
      throw new ConfigError(`router: ${where}.match must be an object with host and/or pathPrefix`);
    }
    const mo = m as Record<string, unknown>;
    for (const k of Object.keys(mo)) {
      if (k !== "host" && k !== "pathPrefix")
        throw new ConfigError(`router: ${where}.match has unknown key "${k}"`);
    }
    if (mo.host !== undefined && (typeof mo.host !== "string" || !/^[A-Za-z0-9.-]+$/.test(mo.host))) {
      throw new ConfigError(`router: ${where}.match.host must be a host name without port`);
    }
    if (
      mo.pathPrefix !== undefined &&
      (typeof mo.pathPrefix !== "string" || !mo.pathPrefix.startsWith("/"))
    ) {
      throw new ConfigError(`router: ${where}.match.pathPrefix must start with /`);
    }
    if (mo.host === undefined && mo.pathPrefix === undefined) {
      throw new ConfigError(`router: ${where}.match needs host and/or pathPrefix`);
    }
    const match: PoolMatch = Object.freeze({
      ...(mo.host !== undefined ? { host: mo.host.toLowerCase() } : {}),
      ...(mo.pathPrefix !== undefined ? { pathPrefix: mo.pathPrefix } : {}),
    });
    return Object.freeze({
      name: o.name,
      algorithm: algorithm as AlgorithmName,
      servers: Object.freeze(servers),
      dns: Object.freeze(dns),
      match,
    });
  });
}

function stringList(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
    throw new ConfigError(`router: ${where} must be a list of strings`);
  }
  return v as string[];
}
