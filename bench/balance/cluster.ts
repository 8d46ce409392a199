/**
 * The simulated cluster, as one process: the application servers (each gets a real tasklb sidecar
 * started by the bench), the oracle balancer, and a control endpoint for the bench.
 *
 * The oracle lives here because it must know every server's *true* state without delay: it reads
 * each server's busy slots, queue and current speed in-process and sends the request to the server
 * with the least expected completion time, through that server's sidecar like every other
 * balancer. It is the practical limit a balancer could reach with perfect, instant knowledge.
 *
 * Usage: node cluster.js '<{"servers": SimServerConfig[]}>'; prints one line
 * `{"ready":true,"apps":{id:port},"control":port,"oracle":port}`.
 * Control API (loopback only): POST /sidecars {id: url} · POST /schedule {events} · POST /reset ·
 * GET /state.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Pool } from "undici";
import { endToEndHeaders, UndiciRelay } from "../lib/undici-relay.js";
import { SimServer, type SimServerConfig } from "./sim-server.js";

export interface ClusterEvent {
  /** ms after the schedule is posted. */
  readonly atMs: number;
  readonly server: string;
  readonly kind: "slow" | "normal" | "kill" | "revive";
  readonly factor?: number;
}

const cfg = JSON.parse(process.argv[2] ?? "{}") as { servers: SimServerConfig[] };
const servers = cfg.servers.map((c) => new SimServer(c));
const byId = new Map(servers.map((s) => [s.config.id, s]));
const pools = new Map<string, Pool>();
const outstanding = new Map<string, number>();
let timers: NodeJS.Timeout[] = [];

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      try {
        resolve(chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : {});
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function applyEvent(e: ClusterEvent): void {
  const s = byId.get(e.server);
  if (!s) return;
  if (e.kind === "slow") s.setSlowdown(e.factor ?? 4);
  else if (e.kind === "normal") s.setSlowdown(1);
  else if (e.kind === "kill") s.kill();
  else void s.revive();
}

const control = createServer((req, res) => {
  void (async () => {
    try {
      if (req.method === "GET" && req.url === "/state")
        return send(
          res,
          200,
          servers.map((s) => s.state()),
        );
      const body = (await readJson(req)) as Record<string, unknown>;
      if (req.url === "/sidecars") {
        for (const [id, url] of Object.entries(body as Record<string, string>)) {
          const s = byId.get(id);
          if (!s) continue;
          s.sidecarUrl = url;
          pools.set(id, new Pool(url, { connections: 512, keepAliveTimeout: 4000 }));
          outstanding.set(id, 0);
        }
        return send(res, 200, { ok: true });
      }
      if (req.url === "/schedule") {
        for (const e of (body.events as ClusterEvent[] | undefined) ?? [])
          timers.push(setTimeout(() => applyEvent(e), e.atMs));
        return send(res, 200, { ok: true });
      }
      if (req.url === "/reset") {
        for (const t of timers) clearTimeout(t);
        timers = [];
        await Promise.all(servers.map((s) => s.reset()));
        return send(res, 200, { ok: true });
      }
      send(res, 404, { error: "not found" });
    } catch (err) {
      send(res, 500, { error: String(err) });
    }
  })();
});

/** Expected completion time of one more request on `s`: its wait in the queue plus its service. */
function expectedCompletionMs(s: SimServer): number {
  const st = s.state();
  const n = Math.max(outstanding.get(st.id) ?? 0, st.busy + st.queued);
  const waitRounds = Math.max(0, n + 1 - st.slots) / st.slots;
  // Free slots make every idle-enough server tie; prefer the emptier one (less shared overhead).
  return (waitRounds + 1) * st.meanServiceMs * (1 + 0.001 * n);
}

const oracle = createServer((req, res) => {
  let best: SimServer | undefined;
  let bestEct = Infinity;
  for (const s of servers) {
    if (!s.state().alive || !pools.has(s.config.id)) continue;
    const ect = expectedCompletionMs(s) * (1 + Math.random() * 1e-9);
    if (ect < bestEct) {
      bestEct = ect;
      best = s;
    }
  }
  if (!best) {
    res.writeHead(503, { "x-tasklb-error": "NO_SERVER" }).end();
    return;
  }
  const id = best.config.id;
  outstanding.set(id, (outstanding.get(id) ?? 0) + 1);
  let released = false;
  const done = () => {
    if (released) return;
    released = true;
    outstanding.set(id, (outstanding.get(id) ?? 1) - 1);
  };
  res.once("close", done);
  const headers = endToEndHeaders(req.rawHeaders);
  pools.get(id)!.dispatch(
    {
      path: req.url ?? "/",
      method: req.method ?? "GET",
      headers,
      body: null,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    },
    new UndiciRelay(res, done, { "x-tasklb-error": "ORACLE_UPSTREAM" }),
  );
});
oracle.keepAliveTimeout = 65_000;

async function main(): Promise<void> {
  const apps: Record<string, number> = {};
  for (const s of servers) apps[s.config.id] = await s.start();
  const listen = (srv: typeof control) =>
    new Promise<number>((resolve) =>
      srv.listen(0, "127.0.0.1", () => {
        const a = srv.address();
        resolve(typeof a === "object" && a ? a.port : 0);
      }),
    );
  const controlPort = await listen(control);
  const oraclePort = await listen(oracle);
  process.stdout.write(
    JSON.stringify({ ready: true, apps, control: controlPort, oracle: oraclePort }) + "\n",
  );
}

process.on("SIGTERM", () => {
  for (const t of timers) clearTimeout(t);
  void Promise.all(servers.map((s) => s.close())).finally(() => process.exit(0));
});

main().catch((err: unknown) => {
  process.stderr.write(`cluster: ${String(err)}\n`);
  process.exit(1);
});
