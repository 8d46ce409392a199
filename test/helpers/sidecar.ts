/**
 * Sidecars for tests, in one line:
 *
 * - `startSidecar(t, appUrl, overrides?)` builds one in-process on 127.0.0.1 port 0 (closed after
 *   the test) — the same `createSidecar` the CLI uses.
 * - `spawnSidecar(t, args)` runs the real CLI (`tasklb sidecar …`) as a child process and reads
 *   the bound ports from its "sidecar listening" log line; for signals, drain and process memory.
 * - `runSidecarCli(args)` runs the CLI to completion (bad configuration, --help).
 * - `send(url, opts)` one HTTP exchange with raw headers and the whole body (no keep-alive).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";
import type { SidecarConfig } from "../../src/sidecar/config.js";
import { loadSidecarConfig } from "../../src/sidecar/config.js";
import { createSidecar, type Sidecar, type SidecarDeps } from "../../src/sidecar/sidecar.js";

/** The compiled CLI, found relative to this compiled file (works from dist/ and from .build/<x>/). */
export const CLI_PATH = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

export interface RunningSidecar {
  readonly sidecar: Sidecar;
  readonly config: SidecarConfig;
  /** Data URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly controlUrl: string;
}

export function testSidecarConfig(appUrl: string, overrides: Partial<SidecarConfig> = {}): SidecarConfig {
  const base = loadSidecarConfig(
    ["--app", appUrl, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--log-level", "silent"],
    {},
  );
  return Object.freeze({ ...base, ...overrides });
}

export async function startSidecar(
  t: TestContext,
  appUrl: string,
  overrides: Partial<SidecarConfig> = {},
  deps: SidecarDeps = {},
): Promise<RunningSidecar> {
  const config = testSidecarConfig(appUrl, overrides);
  const sidecar = createSidecar(config, { appProbeIntervalMs: 200, ...deps });
  t.after(() => sidecar.close());
  const addr = await sidecar.listen();
  return {
    sidecar,
    config,
    url: `http://127.0.0.1:${addr.data.port}`,
    controlUrl: `http://127.0.0.1:${addr.control.port}`,
  };
}

export interface SpawnedSidecar {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly controlUrl: string;
  /** Everything written to stderr so far (JSON log lines). */
  stderr(): string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function spawnSidecar(
  t: TestContext,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  startTimeoutMs = 15_000,
): Promise<SpawnedSidecar> {
  const proc = spawn(process.execPath, [CLI_PATH, "sidecar", ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  proc.stderr.setEncoding("utf8");
  proc.stdout.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGKILL");
      await exited;
    }
  });
  const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`sidecar did not start in time:\n${err}`)),
      startTimeoutMs,
    );
    proc.stderr.on("data", (chunk: string) => {
      err += chunk;
      for (const line of err.split("\n")) {
        if (!line.includes('"sidecar listening"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code} before listening:\n${err}`));
    });
  });
  return {
    proc,
    pid: proc.pid!,
    url: `http://${String(listening.listen)}`,
    controlUrl: `http://${String(listening.control)}`,
    stderr: () => err,
    exited,
  };
}

export function runSidecarCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 20_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI_PATH, "sidecar", ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`tasklb sidecar ${args.join(" ")} did not exit in ${timeoutMs} ms`));
    }, timeoutMs);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface SendOptions {
  readonly method?: string;
  readonly path?: string;
  /** Raw header list [name, value, …] (repeats allowed) or an object. */
  readonly headers?: readonly string[] | Record<string, string>;
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
}

export interface SendResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  readonly text: string;
  json<T = unknown>(): T;
}

export function send(base: string, opts: SendOptions = {}): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const url = new URL(opts.path ?? "/", base);
    let headers: string[] | Record<string, string> = {
      ...(opts.headers as Record<string, string> | undefined),
    };
    if (Array.isArray(opts.headers)) {
      headers = [...(opts.headers as string[])];
      // Node adds Host itself only for object headers.
      if (!headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === "host"))
        headers.unshift("Host", url.host);
    }
    const req = httpRequest(url, { method: opts.method ?? "GET", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        const text = body.toString("utf8");
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          text,
          json: <T>() => JSON.parse(text) as T,
        });
      });
      res.on("error", reject);
    });
    req.setTimeout(opts.timeoutMs ?? 20_000, () =>
      req.destroy(new Error(`request to ${url.href} timed out`)),
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Polls `check` until it returns a truthy value (bounded); returns that value. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
