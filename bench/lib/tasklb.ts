/**
 * Starts the real tasklb sidecar and router as CLI processes (`node dist/src/cli.js …`), exactly as
 * a user would, on port 0, and learns their bound ports from the JSON line each logs at start-up.
 */
import { jsonLine, spawnProc, tasklbCli, type Proc } from "./proc.js";

export interface TasklbProc {
  readonly proc: Proc;
  /** Data origin, e.g. http://127.0.0.1:41234. */
  readonly dataUrl: string;
  /** Control (sidecar) or admin (router) origin. */
  readonly controlUrl: string;
  stop(): Promise<void>;
}

/** Collects `host:port` / URL / port values under keys that name a data or control address. */
function addresses(
  obj: unknown,
  path = "",
  out: { key: string; port: number }[] = [],
): { key: string; port: number }[] {
  if (obj === null || typeof obj !== "object") return out;
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const key = `${path}.${k}`.toLowerCase();
    if (typeof v === "string") {
      const m = /:(\d{2,5})\/?$/.exec(v);
      if (m) out.push({ key, port: Number(m[1]) });
    } else if (typeof v === "number" && /port/.test(k.toLowerCase()) && v > 0 && v < 65536) {
      out.push({ key, port: v });
    } else if (typeof v === "object") {
      addresses(v, key, out);
    }
  }
  return out;
}

/** Finds {data, control} ports in a start-up log line, or undefined. */
export function portsFromLogLine(
  line: string,
  controlWord: "control" | "admin",
): { data: number; control: number } | undefined {
  const obj = jsonLine(line);
  if (!obj) return undefined;
  const found = addresses(obj);
  const control = found.find((a) => a.key.includes(controlWord));
  const data = found.find(
    (a) =>
      !a.key.includes(controlWord) &&
      !a.key.includes("app") &&
      (a.key.includes("listen") || a.key.includes("data")),
  );
  if (!control || !data) return undefined;
  return { data: data.port, control: control.port };
}

function start(
  name: string,
  args: string[],
  controlWord: "control" | "admin",
  cpus?: string,
  nodeArgs: readonly string[] = [],
  cli: string = tasklbCli(),
): Promise<TasklbProc> {
  const proc = spawnProc(name, process.execPath, [...nodeArgs, cli, ...args], { cpus });
  return proc
    .waitFor((line) => portsFromLogLine(line, controlWord), 20_000)
    .then(
      (p) => ({
        proc,
        dataUrl: `http://127.0.0.1:${p.data}`,
        controlUrl: `http://127.0.0.1:${p.control}`,
        stop: () => proc.stop(),
      }),
      async (err: unknown) => {
        await proc.stop();
        throw err;
      },
    );
}

/** The `tasklb sidecar` arguments every bench uses: loopback, port 0, start-up logged. */
export function sidecarArgs(app: string, extra: readonly string[] = []): string[] {
  return [
    "sidecar",
    "--app",
    app,
    "--listen",
    "127.0.0.1:0",
    "--control",
    "127.0.0.1:0",
    "--log-level",
    "info",
    ...extra,
  ];
}

/** The `tasklb router` arguments every bench uses, in front of `servers` (data=control pairs). */
export function routerArgs(
  servers: readonly { data: string; control: string }[],
  extra: readonly string[] = [],
): string[] {
  return [
    "router",
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--server",
    servers.map((s) => `${s.data}=${s.control}`).join(","),
    "--log-level",
    "info",
    ...extra,
  ];
}

export function startSidecar(opts: {
  app: string;
  cpus?: string | undefined;
  extra?: readonly string[];
  nodeArgs?: readonly string[];
  /** Another build's `src/cli.js` (default: this one's). */
  cli?: string;
}): Promise<TasklbProc> {
  return start("sidecar", sidecarArgs(opts.app, opts.extra), "control", opts.cpus, opts.nodeArgs, opts.cli);
}

export function startRouter(opts: {
  servers: readonly { data: string; control: string }[];
  algorithm?: string;
  cpus?: string | undefined;
  extra?: readonly string[];
  nodeArgs?: readonly string[];
  /** Another build's `src/cli.js` (default: this one's). */
  cli?: string;
}): Promise<TasklbProc> {
  const args = routerArgs(opts.servers, [
    ...(opts.algorithm ? ["--algorithm", opts.algorithm] : []),
    ...(opts.extra ?? []),
  ]);
  return start("router", args, "admin", opts.cpus, opts.nodeArgs, opts.cli);
}
