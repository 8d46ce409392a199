/**
 * Configuration parsing shared by every subcommand. Each role declares its options once (name,
 * flag, `TASKLB_*` variable, type, default, help); {@link loadOptions} merges, in rising priority,
 * defaults < config file (`--config`, JSON) < environment < flags, validates every value, and
 * returns a frozen object. Anything wrong throws a {@link ConfigError} naming the option and the
 * source it came from, so the CLI can exit non-zero with a message that says what is wrong.
 * The same spec generates `--help` and is checked against the README and the deploy manifests.
 */
import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.js";

export type OptionType = "string" | "integer" | "number" | "boolean" | "url" | "host-port" | "list" | "enum";

export interface OptionSpec {
  /** Key in the resulting object and in a config file (camelCase; units in the name). */
  readonly key: string;
  /** Long flag without dashes (kebab-case). */
  readonly flag: string;
  readonly type: OptionType;
  readonly help: string;
  readonly default?: unknown;
  readonly required?: boolean;
  readonly choices?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** For `url`: allowed protocols (default http: and https:). */
  readonly protocols?: readonly string[];
  /** Keep the value out of `--help` defaults and of logged configuration. */
  readonly secret?: boolean;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function envName(spec: OptionSpec): string {
  return "TASKLB_" + spec.flag.toUpperCase().replace(/-/g, "_");
}

export interface LoadOptionsArgs {
  readonly command: string;
  readonly specs: readonly OptionSpec[];
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Injected for tests; defaults to reading the file from disk. */
  readonly readFile?: (path: string) => string;
}

/** Parses argv/env/file into a validated, frozen record. Throws ConfigError. */
export function loadOptions<T>(args: LoadOptionsArgs): T {
  const { specs, argv, env, command } = args;
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const fromFlags = new Map<string, string[]>();
  let configPath = env.TASKLB_CONFIG;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new ConfigError(`${command}: unexpected argument "${arg}"`);
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    if (name === "config") {
      configPath = value ?? argv[++i];
      if (!configPath) throw new ConfigError(`${command}: --config needs a file path`);
      continue;
    }
    let spec = byFlag.get(name);
    if (!spec && name.startsWith("no-")) {
      const neg = byFlag.get(name.slice(3));
      if (neg?.type === "boolean" && value === undefined) {
        spec = neg;
        value = "false";
      }
    }
    if (!spec) throw new ConfigError(`${command}: unknown flag --${name} (see tasklb ${command} --help)`);
    if (value === undefined) {
      const next = argv[i + 1];
      if (spec.type === "boolean" && (next === undefined || next.startsWith("--"))) value = "true";
      else if (next === undefined) throw new ConfigError(`${command}: --${name} needs a value`);
      else value = argv[++i];
    }
    const list = fromFlags.get(spec.key) ?? [];
    list.push(value!);
    fromFlags.set(spec.key, list);
  }

  let fileValues: Record<string, unknown> = {};
  if (configPath) fileValues = readConfigFile(configPath, args.readFile, command, specs);

  const out: Record<string, unknown> = {};
  for (const spec of specs) {
    let raw: unknown;
    let source: string;
    const flagged = fromFlags.get(spec.key);
    const envValue = env[envName(spec)];
    if (flagged) {
      raw = spec.type === "list" ? flagged.join(",") : flagged[flagged.length - 1];
      source = `--${spec.flag}`;
    } else if (envValue !== undefined && envValue !== "") {
      raw = envValue;
      source = envName(spec);
    } else if (spec.key in fileValues) {
      raw = fileValues[spec.key];
      source = `${configPath}: "${spec.key}"`;
    } else {
      if (spec.required) {
        throw new ConfigError(
          `${command}: --${spec.flag} is required (or set ${envName(spec)}); see tasklb ${command} --help`,
        );
      }
      out[spec.key] = spec.default;
      continue;
    }
    out[spec.key] = coerce(spec, raw, source, command);
  }
  return Object.freeze(out) as T;
}

function readConfigFile(
  path: string,
  readFile: ((path: string) => string) | undefined,
  command: string,
  specs: readonly OptionSpec[],
): Record<string, unknown> {
  let text: string;
  try {
    text = (readFile ?? ((p) => readFileSync(p, "utf8")))(path);
  } catch (err) {
    throw new ConfigError(`${command}: cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${command}: config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`${command}: config file ${path} must hold a JSON object`);
  }
  const known = new Set(specs.map((s) => s.key));
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(`${command}: config file ${path} has unknown key "${key}"`);
  }
  return parsed as Record<string, unknown>;
}

function coerce(spec: OptionSpec, raw: unknown, source: string, command: string): unknown {
  const fail = (why: string): never => {
    throw new ConfigError(`${command}: ${source} ${why} (got ${JSON.stringify(spec.secret ? "***" : raw)})`);
  };
  const text = typeof raw === "string" ? raw.trim() : raw;
  switch (spec.type) {
    case "string":
      if (typeof text !== "string") return fail("must be a string");
      return text;
    case "boolean": {
      if (typeof text === "boolean") return text;
      if (text === "true" || text === "1" || text === "yes") return true;
      if (text === "false" || text === "0" || text === "no") return false;
      return fail("must be true or false");
    }
    case "integer":
    case "number": {
      const n =
        typeof text === "number" ? text : typeof text === "string" && text !== "" ? Number(text) : NaN;
      if (!Number.isFinite(n)) return fail("must be a number");
      if (spec.type === "integer" && !Number.isInteger(n)) return fail("must be a whole number");
      if (spec.min !== undefined && n < spec.min) return fail(`must be at least ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) return fail(`must be at most ${spec.max}`);
      return n;
    }
    case "enum":
      if (typeof text !== "string" || !spec.choices?.includes(text)) {
        return fail(`must be one of ${spec.choices?.join(", ")}`);
      }
      return text;
    case "url": {
      if (typeof text !== "string") return fail("must be a URL");
      return parseUrl(text, spec.protocols ?? ["http:", "https:"], fail);
    }
    case "host-port":
      if (typeof text !== "string" && typeof text !== "number") return fail("must be HOST:PORT");
      return parseHostPort(String(text), fail);
    case "list": {
      const items = Array.isArray(text)
        ? text.map(String)
        : typeof text === "string"
          ? text.split(",")
          : null;
      if (!items) return fail("must be a comma-separated list");
      return Object.freeze(items.map((s) => s.trim()).filter((s) => s !== ""));
    }
  }
}

export function parseUrl(text: string, protocols: readonly string[], fail: (why: string) => never): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail("must be an absolute URL such as http://127.0.0.1:3000");
  }
  if (!protocols.includes(url.protocol)) return fail(`must use ${protocols.join(" or ")}`);
  return url;
}

/** Accepts `host:port`, `[v6]:port`, `:port` and `port` (host 0.0.0.0). Port 0 means any free port. */
export function parseHostPort(text: string, fail: (why: string) => never): HostPort {
  let host = "0.0.0.0";
  let portText = text;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text);
  if (m) {
    host = m[1] ?? (m[2] || "0.0.0.0");
    portText = m[3]!;
  }
  if (!/^\d+$/.test(portText)) return fail("must be HOST:PORT, [IPv6]:PORT or PORT");
  const port = Number(portText);
  if (port > 65535) return fail("has a port above 65535");
  return Object.freeze({ host, port });
}

/** Renders `--help` text from the spec. */
export function formatHelp(command: string, summary: string, specs: readonly OptionSpec[]): string {
  const lines = [
    `Usage: tasklb ${command} [flags]`,
    "",
    summary,
    "",
    "Flags (each also TASKLB_<FLAG> in the environment):",
  ];
  for (const s of specs) {
    const def =
      s.default === undefined || s.secret
        ? s.required
          ? " (required)"
          : ""
        : ` (default ${Array.isArray(s.default) ? s.default.join(",") : String(formatDefault(s.default))})`;
    lines.push(`  --${s.flag} <${s.type}>`.padEnd(38) + `${s.help}${def}  [${envName(s)}]`);
  }
  lines.push(
    `  --config <file>`.padEnd(38) + "JSON file with any of the keys above (camelCase)  [TASKLB_CONFIG]",
  );
  return lines.join("\n") + "\n";
}

function formatDefault(v: unknown): string {
  if (v && typeof v === "object" && "host" in v && "port" in v) {
    const hp = v as HostPort;
    return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
  }
  return String(v);
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
