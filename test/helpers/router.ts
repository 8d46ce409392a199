/**
 * Test helpers for the router: start one in-process or as a real `tasklb router` process, put demo
 * apps behind real in-process sidecars, serve a hand-made load report, wait for conditions and
 * drive bounded load. Everything binds 127.0.0.1 port 0 and is closed with `t.after`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import {
  createDemoApp,
  DEMO_SERVER_HEADER,
  type DemoApp,
  type DemoAppOptions,
} from "../../src/demo/demo-app.js";
import { loadRouterConfig } from "../../src/router/config.js";
import { createRouter, type Router, type RouterDeps } from "../../src/router/router.js";
import type { ServersSnapshot, ServerSnapshot } from "../../src/router/servers-snapshot.js";
import { LOAD_REPORT_VERSION, type LoadReport, type SidecarState } from "../../src/shared/load-report.js";
import { loadSidecarConfig } from "../../src/sidecar/config.js";
import { createSidecar, type Sidecar } from "../../src/sidecar/sidecar.js";

export const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

/** Polls `check` every `intervalMs` until it returns a truthy value or `timeoutMs` passes (then throws). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface RouterHandle {
  readonly router: Router;
  /** Data URL, e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly adminUrl: string;
}

/** Builds a router from CLI-style flags (ports default to 127.0.0.1:0, logs silent) and listens. */
export async function startRouter(
  t: TestContext,
  args: readonly string[],
  deps: RouterDeps = {},
): Promise<RouterHandle> {
  const config = loadRouterConfig(
    ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--log-level", "silent", ...args],
    {},
  );
  const router = createRouter(config, deps);
  t.after(() => router.close());
  const a = await router.listen();
  return { router, url: `http://${a.listen}`, adminUrl: `http://${a.admin}` };
}

export interface SpawnedRouter {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly adminUrl: string;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/** Runs `tasklb router` as a real process and reads its bound ports from the `router listening` log line. */
export async function spawnRouter(t: TestContext, args: readonly string[]): Promise<SpawnedRouter> {
  const proc = spawn(
    process.execPath,
    [CLI, "router", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", ...args],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let err = "";
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGKILL");
      await exited;
    }
  });
  proc.stdout.resume();
  const listening = new Promise<{ listen: string; admin: string }>((resolve, reject) => {
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk: string) => {
      err += chunk;
      for (const line of err.split("\n")) {
        if (!line.includes('"router listening"')) continue;
        try {
          resolve(JSON.parse(line) as { listen: string; admin: string });
        } catch {
          // partial line; wait for more
        }
      }
    });
    void exited.then((code) => reject(new Error(`router exited (${code}) before listening: ${err}`)));
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`router did not start: ${err}`)), 15_000).unref(),
  );
  const a = await Promise.race([listening, timeout]);
  return { proc, url: `http://${a.listen}`, adminUrl: `http://${a.admin}`, exited, stderr: () => err };
}

export interface ClusterMember {
  readonly app: DemoApp;
  readonly appUrl: string;
  sidecar: Sidecar;
  dataUrl: string;
  controlUrl: string;
  /** `--server` entry for the router: DATA_URL=CONTROL_URL */
  serverSpec: string;
}

/** Starts a real sidecar (in-process) in front of `appUrl`. */
export async function startSidecar(
  t: TestContext,
  appUrl: string,
  args: readonly string[] = [],
  listen = "127.0.0.1:0",
  control = "127.0.0.1:0",
): Promise<Sidecar> {
  const config = loadSidecarConfig(
    ["--app", appUrl, "--listen", listen, "--control", control, "--log-level", "silent", ...args],
    {},
  );
  const sidecar = createSidecar(config, { appProbeIntervalMs: 100 });
  t.after(() => sidecar.close());
  await sidecar.listen();
  return sidecar;
}

/** Demo apps of the given speeds, each behind its own real sidecar. */
export async function startCluster(
  t: TestContext,
  apps: readonly DemoAppOptions[],
  sidecarArgs: readonly string[] = [],
): Promise<ClusterMember[]> {
  return Promise.all(
    apps.map(async (opts) => {
      const app = createDemoApp(opts);
      t.after(() => app.close());
      const appUrl = await app.listen();
      const sidecar = await startSidecar(t, appUrl, sidecarArgs);
      const a = sidecar.addresses!;
      app.setSelfUrl(a.dataUrl);
      return {
        app,
        appUrl,
        sidecar,
        dataUrl: a.dataUrl,
        controlUrl: a.controlUrl,
        serverSpec: `${a.dataUrl}=${a.controlUrl}`,
      };
    }),
  );
}

export async function getJson<T = unknown>(
  url: string,
  token?: string,
): Promise<{ status: number; body: T; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.body.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.statusCode, body: body as T, headers: res.headers };
}

export async function servers(adminUrl: string, token?: string): Promise<ServerSnapshot[]> {
  const r = await getJson<ServersSnapshot>(`${adminUrl}/v1/servers`, token);
  if (r.status !== 200) throw new Error(`/v1/servers answered ${r.status}`);
  return [...r.body.servers];
}

/** Waits until exactly the given data URLs are in rotation (ready or easing). */
export async function waitInRotation(
  adminUrl: string,
  dataUrls: readonly string[],
  token?: string,
  timeoutMs = 10_000,
) {
  const want = [...dataUrls].sort().join(",");
  return waitFor(
    async () => {
      const s = await servers(adminUrl, token);
      const got = s
        .filter((x) => x.state === "ready" || x.state === "easing")
        .map((x) => x.dataUrl)
        .sort()
        .join(",");
      return got === want;
    },
    `servers in rotation = ${want}`,
    timeoutMs,
  );
}

export interface LoadResult {
  /** Count of answers per `x-demo-server` name ("" when none). */
  readonly byServer: Map<string, number>;
  readonly byStatus: Map<number, number>;
  /** Count of proxy-made answers per `x-tasklb-error` code. */
  readonly byError: Map<string, number>;
  /** Network errors (no HTTP answer). */
  readonly failures: number;
  readonly total: number;
}

/**
 * Sends `count` requests with at most `concurrency` in flight (closed loop, bounded in count and
 * by `timeoutMs` per request) and counts who answered.
 */
export async function runLoad(
  url: string,
  opts: {
    count: number;
    concurrency: number;
    path?: string;
    method?: string;
    timeoutMs?: number;
    spacingMs?: number;
  },
): Promise<LoadResult> {
  const agent = new Agent({ connections: opts.concurrency, keepAliveTimeout: 1000 });
  const byServer = new Map<string, number>();
  const byStatus = new Map<number, number>();
  const byError = new Map<string, number>();
  let failures = 0;
  let next = 0;
  const worker = async () => {
    while (next < opts.count) {
      next++;
      try {
        const res = await request(url + (opts.path ?? "/work"), {
          method: (opts.method ?? "GET") as "GET",
          dispatcher: agent,
          headersTimeout: opts.timeoutMs ?? 15_000,
          bodyTimeout: opts.timeoutMs ?? 15_000,
        });
        await res.body.dump();
        const s = res.headers[DEMO_SERVER_HEADER];
        const name = typeof s === "string" ? s : "";
        byServer.set(name, (byServer.get(name) ?? 0) + 1);
        byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
        const code = res.headers["x-tasklb-error"];
        if (typeof code === "string") byError.set(code, (byError.get(code) ?? 0) + 1);
      } catch {
        failures++;
      }
      if (opts.spacingMs) await new Promise((r) => setTimeout(r, opts.spacingMs));
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  } finally {
    await agent.close();
  }
  return { byServer, byStatus, byError, failures, total: opts.count };
}

export interface ReportServer {
  readonly url: string;
  /** Requests received on /v1/load. */
  readonly polls: number;
  epoch: string;
  state: SidecarState;
  /** Cumulative task-seconds the next reports carry. */
  taskSeconds: number;
  topLevelCalls: number;
  hang: boolean;
  close(): Promise<void>;
}

/**
 * A real HTTP server on loopback that serves a hand-made, valid LoadReport on /v1/load (for poller
 * tests that need exact figures or a hanging control port). With `token`, other callers get 401.
 */
export async function startReportServer(
  t: TestContext,
  opts: { token?: string; dataUrl?: string } = {},
): Promise<ReportServer> {
  const started = performance.now();
  let seq = 0;
  const hanging = new Set<ServerResponse>();
  const s = {
    url: "",
    polls: 0,
    epoch: "epoch-1",
    state: "serving" as SidecarState,
    taskSeconds: 0,
    topLevelCalls: 0,
    hang: false,
    close: (): Promise<void> => Promise.resolve(),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== "/v1/load") {
      res.writeHead(404).end();
      return;
    }
    s.polls++;
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { "content-type": "application/json" }).end('{"error":{"code":"UNAUTHORIZED"}}');
      return;
    }
    if (s.hang) {
      hanging.add(res);
      return;
    }
    const report: LoadReport = {
      version: LOAD_REPORT_VERSION,
      epoch: s.epoch,
      seq: ++seq,
      uptimeSeconds: (performance.now() - started) / 1000,
      state: s.state,
      appReachable: true,
      dataUrl: opts.dataUrl ?? "",
      totals: { taskSeconds: s.taskSeconds, topLevelCalls: s.topLevelCalls, nestedCalls: 0, errors: 0 },
      live: { inFlight: 0, inFlightTopLevel: 0, inFlightAgeSeconds: 0, cpu: 0.1, cores: 2 },
    };
    const body = JSON.stringify(report);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  s.close = () =>
    new Promise<void>((resolve) => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.after(() => s.close());
  return s;
}

/** A plain HTTP app that answers 200 with its name (for tests that need a trivial upstream). */
export async function startNamedServer(
  t: TestContext,
  name: string,
  onRequest?: (req: IncomingMessage) => void,
): Promise<{ url: string; hits: number; close(): Promise<void> }> {
  const h = { url: "", hits: 0, close: (): Promise<void> => Promise.resolve() };
  const server = createServer((req, res) => {
    h.hits++;
    onRequest?.(req);
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { [DEMO_SERVER_HEADER]: name, "content-type": "text/plain" });
      res.end(name);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  h.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  h.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  t.after(() => h.close());
  return h;
}
