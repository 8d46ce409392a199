/**
 * The floor for the sidecar: the least a correct-enough Node proxy can do per request with undici —
 * `Pool.dispatch` with a raw handler (no header objects, no stream wrappers), hop-by-hop request
 * headers dropped, the response streamed with backpressure. No Via, no X-Forwarded-*, no tracing,
 * no timing: whatever the sidecar costs beyond this is the price of its features.
 * Usage: node minimal-undici-proxy.js <upstream-url>. Prints `{"ready":true,"port":N}`.
 */
import { createServer } from "node:http";
import { Pool } from "undici";
import { endToEndHeaders, UndiciRelay } from "../lib/undici-relay.js";
import { serveChild } from "../lib/serve-child.js";

const target = process.argv[2] ?? "http://127.0.0.1:8080";
const pool = new Pool(target, { connections: 256, keepAliveTimeout: 4000 });
const server = createServer((req, res) => {
  const headers = endToEndHeaders(req.rawHeaders);
  const hasBody =
    req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  pool.dispatch(
    {
      path: req.url ?? "/",
      method: req.method ?? "GET",
      headers,
      body: hasBody ? req : null,
    },
    new UndiciRelay(res),
  );
});
serveChild(server);
