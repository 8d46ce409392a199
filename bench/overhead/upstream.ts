/**
 * The upstream every overhead target fronts: a plain Node HTTP server with keep-alive, answering
 * `/small` with 100 bytes and `/large` with 64 KiB (both preallocated, so the upstream's own cost
 * is as small and steady as Node allows). Prints `{"ready":true,"port":N}` once listening.
 */
import { createServer } from "node:http";
import { serveChild } from "../lib/serve-child.js";

const SMALL = Buffer.alloc(100, "a");
const LARGE = Buffer.alloc(64 * 1024, "b");

const server = createServer((req, res) => {
  const body = req.url === "/large" ? LARGE : SMALL;
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
  res.end(body);
});
server.headersTimeout = 66_000;
serveChild(server);
