/**
 * The floor for the sidecar: the least a correct-enough Node proxy can do per request with undici —
 * `Pool.dispatch` with a raw handler (no header objects, no stream wrappers), hop-by-hop request
 * headers dropped, the response streamed with backpressure. No Via, no X-Forwarded-*, no tracing,
 * no timing: whatever the sidecar costs beyond this is the price of its features.
 * Usage: node minimal-undici-proxy.js <upstream-url>. Prints `{"ready":true,"port":N}`.
 */
import { createServer, type ServerResponse } from "node:http";
import { Pool, type Dispatcher } from "undici";

const target = process.argv[2] ?? "http://127.0.0.1:8080";
const pool = new Pool(target, { connections: 256, keepAliveTimeout: 4000 });
const HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "expect",
  "te",
  "trailer",
  "proxy-connection",
]);

class Relay implements Dispatcher.DispatchHandler {
  constructor(private readonly res: ServerResponse) {}
  onConnect(): void {}
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i]!.toString("latin1");
      if (HOP.has(k.toLowerCase())) continue;
      out.push(k, raw[i + 1]!.toString("latin1"));
    }
    this.res.writeHead(status, out as unknown as string[][]);
    this.res.on("drain", resume);
    return true;
  }
  onData(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }
  onComplete(): void {
    this.res.end();
  }
  onError(): void {
    if (!this.res.headersSent) this.res.writeHead(502).end();
    else this.res.destroy();
  }
}

const server = createServer((req, res) => {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  }
  const hasBody =
    req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  pool.dispatch(
    {
      path: req.url ?? "/",
      method: req.method ?? "GET",
      headers,
      body: hasBody ? req : null,
    },
    new Relay(res),
  );
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(
    JSON.stringify({ ready: true, port: typeof addr === "object" && addr ? addr.port : 0 }) + "\n",
  );
});
process.on("SIGTERM", () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
