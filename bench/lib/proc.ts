/**
 * Child processes for the benches: spawn (optionally pinned to a CPU with `taskset`), wait for a
 * line that says the process is ready, and stop exactly the processes this bench started, by PID.
 * Every process started here is registered so an interrupted bench (Ctrl-C, an exception) still
 * cleans up after itself.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { processTree } from "./proc-stats.js";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Lines the process printed so far (stdout and stderr), bounded. */
  readonly output: string[];
  /** Resolves with the first line (stdout or stderr) for which `match` returns a value. */
  waitFor<T>(match: (line: string) => T | undefined, timeoutMs?: number): Promise<T>;
  stop(): Promise<void>;
}

const started = new Set<Proc>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Runs synchronously (an 'exit' handler cannot wait): TERM every process we started and its
  // descendants (nginx's and HAProxy's workers would be orphaned by a KILL of the master), give
  // them a moment, then KILL what is left.
  const killAll = () => {
    const pids = [...started].flatMap((p) => processTree(p.pid));
    if (pids.length === 0) return;
    const signal = (sig: NodeJS.Signals) => {
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          // already gone
        }
      }
    };
    signal("SIGTERM");
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
    signal("SIGKILL");
    started.clear();
  };
  process.on("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

let tasksetOk: boolean | undefined;
export function canPin(): boolean {
  if (tasksetOk === undefined) tasksetOk = spawnSync("taskset", ["-c", "0", "true"]).status === 0;
  return tasksetOk;
}

/**
 * Runs a Node script to its end and collects its output (a bench driving another bench, a smoke
 * test); killed after `timeoutMs` when given.
 */
export function runNodeScript(
  script: string,
  args: readonly string[],
  timeoutMs?: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface SpawnOptions {
  /** CPU list for `taskset -c` (e.g. "1"); ignored when taskset is missing or pinning is off. */
  readonly cpus?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

export function spawnProc(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Proc {
  hookExit();
  const pinned = opts.cpus !== undefined && canPin();
  // taskset execs the command, so the PID we get is the command's own PID.
  const child = pinned
    ? spawn("taskset", ["-c", opts.cpus, cmd, ...args], {
        stdio: ["ignore", "pipe", "pipe"],
        env: opts.env,
        cwd: opts.cwd,
      })
    : spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: opts.env, cwd: opts.cwd });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  const output: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const onChunk = (() => {
    const partial = { out: "", err: "" };
    return (which: "out" | "err", chunk: Buffer) => {
      const text = partial[which] + chunk.toString("utf8");
      const lines = text.split("\n");
      partial[which] = lines.pop() ?? "";
      for (const line of lines) {
        if (output.length < 2000) output.push(line);
        for (const l of listeners) l(line);
      }
    };
  })();
  child.stdout.on("data", (c: Buffer) => onChunk("out", c));
  child.stderr.on("data", (c: Buffer) => onChunk("err", c));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const proc: Proc = {
    name,
    pid: child.pid,
    child,
    output,
    waitFor<T>(match: (line: string) => T | undefined, timeoutMs = 15_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        for (const line of output) {
          const v = match(line);
          if (v !== undefined) return resolve(v);
        }
        const done = (fn: () => void) => {
          clearTimeout(timer);
          listeners.delete(listener);
          child.off("close", onExit);
          fn();
        };
        const listener = (line: string) => {
          const v = match(line);
          if (v !== undefined) done(() => resolve(v));
        };
        const onExit = (code: number | null) =>
          done(() =>
            reject(
              new Error(
                `${name} exited (code ${code}) before it was ready:\n${output.slice(-20).join("\n")}`,
              ),
            ),
          );
        const timer = setTimeout(
          () =>
            done(() =>
              reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${output.slice(-20).join("\n")}`)),
            ),
          timeoutMs,
        );
        listeners.add(listener);
        child.once("close", onExit);
      });
    },
    async stop(): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) {
        started.delete(proc);
        return;
      }
      const tree = processTree(child.pid!);
      child.kill("SIGTERM");
      const t = setTimeout(() => {
        for (const pid of tree) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // gone
          }
        }
      }, 5000);
      await exited;
      clearTimeout(t);
      started.delete(proc);
    },
  };
  started.add(proc);
  return proc;
}

/** Starts a bench module (`bench/<module>`) under Node and waits for the port its ready line names. */
export async function startNodeChild(
  name: string,
  module: string,
  args: string[],
  cpus: string | undefined,
  nodeArgs: readonly string[] = [],
): Promise<{ proc: Proc; port: number }> {
  const proc = spawnProc(name, process.execPath, [...nodeArgs, benchModule(module), ...args], { cpus });
  const port = await proc.waitFor((l) => jsonLine(l)?.port as number | undefined);
  return { proc, port };
}

/** Parses a line as JSON, or undefined. */
export function jsonLine(line: string): Record<string, unknown> | undefined {
  const s = line.trim();
  if (!s.startsWith("{")) return undefined;
  try {
    return JSON.parse(s) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** A port that was free a moment ago (for tools that cannot listen on port 0 and tell us). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Finds an executable on PATH or in the sbin directories Debian puts nginx and haproxy in. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/local/sbin"];
  for (const d of dirs) {
    if (d && existsSync(`${d}/${name}`)) return `${d}/${name}`;
  }
  return undefined;
}

/**
 * Exits with a clear message when a required tool is missing: how to install it, not a stack trace.
 */
export function requireTools(names: readonly string[]): Record<string, string> {
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const n of names) {
    const p = findTool(n);
    if (p) found[n] = p;
    else missing.push(n);
  }
  if (missing.length > 0) {
    process.stderr.write(
      `bench: missing tool(s): ${missing.join(", ")}.\n` +
        `Install them with:  bash scripts/install-test-deps.sh\n` +
        `(Debian/Ubuntu: apt-get install nginx-light haproxy wrk)\n`,
    );
    process.exit(3);
  }
  return found;
}

/** The compiled tasklb CLI, found relative to this file (dist/bench/lib → dist/src/cli.js). */
export function tasklbCli(): string {
  const cli = fileURLToPath(new URL("../../src/cli.js", import.meta.url));
  if (!existsSync(cli)) {
    process.stderr.write(`bench: ${cli} is missing; run \`npm run build\` first.\n`);
    process.exit(3);
  }
  return cli;
}

/** A compiled bench module next to this one (e.g. "overhead/upstream.js"). */
export function benchModule(rel: string): string {
  return fileURLToPath(new URL(`../${rel}`, import.meta.url));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The repository root (the directory with tasklb's package.json), found by walking up from here. */
export function repoRoot(): string {
  let dir = fileURLToPath(new URL(".", import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(`${dir}/package.json`) && existsSync(`${dir}/bench`) && existsSync(`${dir}/src`))
      return dir;
    dir = fileURLToPath(new URL("..", `file://${dir.endsWith("/") ? dir : dir + "/"}`));
  }
  return process.cwd();
}

/**
 * JSON for bench/results/: formatted by Prettier when it is installed (a dev dependency), so the
 * committed results pass `prettier --check .` like every other file.
 */
export async function formatJson(value: unknown): Promise<string> {
  const text = JSON.stringify(value, null, 2) + "\n";
  try {
    const prettier = await import("prettier");
    return await prettier.format(text, { parser: "json", printWidth: 110 });
  } catch {
    return text;
  }
}
