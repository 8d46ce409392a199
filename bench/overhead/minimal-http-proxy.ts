/**
 * The proxy Node users reach for first: http-proxy 1.18 with a keep-alive agent (without one it
 * sends `connection: close` upstream). Deliberately minimal, as in its README.
 * Usage: node minimal-http-proxy.js <upstream-url>. Prints `{"ready":true,"port":N}`.
 */
import { Agent, createServer } from "node:http";
import httpProxy from "http-proxy";
import { serveChild } from "../lib/serve-child.js";

const target = process.argv[2] ?? "http://127.0.0.1:8080";
const proxy = httpProxy.createProxyServer({
  target,
  agent: new Agent({ keepAlive: true, maxSockets: 1024 }),
});
proxy.on("error", (_err, _req, res) => {
  if ("writeHead" in res && !res.headersSent) res.writeHead(502);
  res.end();
});
const server = createServer((req, res) => proxy.web(req, res));
serveChild(server);
