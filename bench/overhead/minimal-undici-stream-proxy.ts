/**
 * The baseline issue 5 names: a minimal proxy written the way undici's documentation shows, with
 * its `stream()` helper — a `Pool` for keep-alive, the response head handed to a factory as a
 * header object, the body piped into the `ServerResponse` the factory returns. Hop-by-hop headers
 * dropped both ways; no Via, no X-Forwarded-*, no tracing, no timing.
 *
 * It sits between http-proxy and the raw `Pool.dispatch` floor (minimal-undici-proxy.ts), which is
 * the path the sidecar itself takes; the overhead bench reports the sidecar against both.
 * Usage: node minimal-undici-stream-proxy.js <upstream-url>. Prints `{"ready":true,"port":N}`.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import { Pool } from "undici";
import { endToEndHeaders, HOP_BY_HOP } from "../lib/undici-relay.js";
import { serveChild } from "../lib/serve-child.js";

const target = process.argv[2] ?? "http://127.0.0.1:8080";
const pool = new Pool(target, { connections: 256, keepAliveTimeout: 4000 });

function responseHead(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  for (const name of HOP_BY_HOP) delete headers[name];
  return headers;
}

const server = createServer((req, res) => {
  const hasBody =
    req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined;
  pool.stream(
    {
      path: req.url ?? "/",
      method: req.method ?? "GET",
      headers: endToEndHeaders(req.rawHeaders),
      body: hasBody ? req : null,
      opaque: res,
    },
    ({ statusCode, headers, opaque }) => {
      const out = opaque as ServerResponse;
      out.writeHead(statusCode, responseHead(headers));
      return out;
    },
    (err) => {
      if (err === null) return;
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    },
  );
});
serveChild(server);
