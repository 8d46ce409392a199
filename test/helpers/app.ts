/**
 * A configurable real application server for tests, on 127.0.0.1 port 0:
 *
 * - `/echo`                 JSON of what arrived (method, url, raw headers, body length)
 * - `/slow?ms=N`            answers after N ms (a timer, not CPU)
 * - `/status/N`             answers with status N (204/304 without body); `?body=…` for others;
 *                           `?forge=CODE` adds `x-tasklb-error: CODE` as if a proxy had made it
 * - `/head`                 a resource whose HEAD answer carries Content-Length but no body
 * - `/hints`                103 Early Hints, then 200
 * - `/download?bytes=N`     N bytes generated on the fly, streamed with backpressure
 * - `/upload`               counts the request body bytes as they stream; answers `{bytes}`
 * - `/hang`                 never answers; reports the request's `close` (the client went away)
 * - `/hop`                  answers with hop-by-hop fields and fields named in `Connection`
 * - `/cookies`              two Set-Cookie fields
 * - `/outer?ms=N&inner=K&innerMs=M`  works N ms, then calls `/slow?ms=M` K times in sequence back
 *                           through `callbackUrl` (the sidecar) with the same traceparent
 * - WebSocket echo on any path (via `ws`)
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { EventEmitter, once } from "node:events";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: readonly string[];
  /** The client port of the connection it came on (tells kept-alive connections apart). */
  readonly remotePort: number | undefined;
  header(name: string): string | undefined;
  headers(name: string): string[];
}

export interface TestApp {
  readonly url: string;
  readonly port: number;
  /** Every request that reached the app, in arrival order. */
  readonly requests: SeenRequest[];
  /** Emits "aborted" (url) when a request closed before the app answered it. */
  readonly events: EventEmitter;
  /** Where `/outer` sends its nested calls (set it to the sidecar's URL). */
  callbackUrl: string | undefined;
  /** Resolves with the next request whose URL starts with `prefix`. */
  nextRequest(prefix: string): Promise<SeenRequest>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** The app's own keep-alive timeout (Node's default is 5 s). */
  readonly keepAliveTimeoutMs?: number;
}

function seen(req: IncomingMessage): SeenRequest {
  const raw = req.rawHeaders;
  const headers = (name: string) => {
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
    return out;
  };
  return {
    method: req.method ?? "",
    url: req.url ?? "",
    rawHeaders: raw,
    remotePort: req.socket.remotePort,
    headers,
    header: (n) => headers(n)[0],
  };
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Streams `total` bytes of a repeating pattern, honouring backpressure. */
function streamBytes(res: ServerResponse, total: number): void {
  const chunk = Buffer.alloc(64 * 1024, "tasklb-");
  let left = total;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      left -= n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

/** A GET through `base` carrying `traceparent`; resolves with the status when the body is read. */
function callBack(base: string, path: string, traceparent: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(path, base),
      { headers: traceparent ? { traceparent } : {}, agent: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const requests: SeenRequest[] = [];
  const events = new EventEmitter();
  const waiters: { prefix: string; resolve: (r: SeenRequest) => void }[] = [];
  const app = { callbackUrl: undefined as string | undefined };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const s = seen(req);
    requests.push(s);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (s.url.startsWith(waiters[i]!.prefix)) waiters.splice(i, 1)[0]!.resolve(s);
    }
    const url = new URL(req.url ?? "/", "http://app");
    const q = (name: string, def: number) => Number(url.searchParams.get(name) ?? def);
    res.on("close", () => {
      if (!res.writableFinished) events.emit("aborted", s.url);
    });

    if (url.pathname === "/echo") {
      let bytes = 0;
      req.on("data", (c: Buffer) => (bytes += c.length));
      await once(req, "end");
      return json(res, 200, { method: s.method, url: s.url, rawHeaders: s.rawHeaders, bytes });
    }
    if (url.pathname === "/slow") {
      req.resume();
      const t = setTimeout(() => json(res, 200, { slept: q("ms", 100) }), q("ms", 100));
      res.on("close", () => clearTimeout(t));
      return;
    }
    if (url.pathname.startsWith("/status/")) {
      req.resume();
      const status = Number(url.pathname.slice(8));
      if (status === 204 || status === 304) {
        res.writeHead(status, { etag: '"v1"' });
        return void res.end();
      }
      const body = url.searchParams.get("body") ?? `status ${status}`;
      const forge = url.searchParams.get("forge");
      res.writeHead(status, {
        "content-type": "text/plain",
        "content-length": Buffer.byteLength(body),
        ...(forge !== null && { "x-tasklb-error": forge }),
      });
      return void res.end(body);
    }
    if (url.pathname === "/head") {
      req.resume();
      const body = "x".repeat(1234);
      res.writeHead(200, { "content-type": "text/plain", "content-length": body.length, etag: '"h"' });
      return void res.end(req.method === "HEAD" ? undefined : body);
    }
    if (url.pathname === "/hints") {
      req.resume();
      res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style" });
      setTimeout(() => json(res, 200, { hinted: true }), 20);
      return;
    }
    if (url.pathname === "/download") {
      req.resume();
      const total = q("bytes", 1024);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total });
      return streamBytes(res, total);
    }
    if (url.pathname === "/upload") {
      let bytes = 0;
      req.on("data", (c: Buffer) => (bytes += c.length));
      await once(req, "end");
      return json(res, 200, { bytes });
    }
    if (url.pathname === "/hang") {
      req.resume();
      return; // answered never: only the client going away ends this request
    }
    if (url.pathname === "/hop") {
      req.resume();
      res.writeHead(200, [
        ["Connection", "X-Internal"],
        ["X-Internal", "secret"],
        ["Keep-Alive", "timeout=5"],
        ["Proxy-Connection", "keep-alive"],
        ["X-Public", "yes"],
        ["Via", "1.1 app-server"],
        ["Content-Length", "2"],
      ] as unknown as string[]);
      return void res.end("ok");
    }
    if (url.pathname === "/cookies") {
      req.resume();
      res.writeHead(200, [
        ["Set-Cookie", "a=1; Path=/"],
        ["Set-Cookie", "b=2; Path=/"],
        ["Content-Length", "0"],
      ] as unknown as string[]);
      return void res.end();
    }
    if (url.pathname === "/outer") {
      req.resume();
      const traceparent = s.header("traceparent");
      await new Promise((r) => setTimeout(r, q("ms", 0)));
      const statuses: number[] = [];
      for (let i = 0; i < q("inner", 0); i++) {
        if (!app.callbackUrl) throw new Error("callbackUrl not set");
        statuses.push(await callBack(app.callbackUrl, `/slow?ms=${q("innerMs", 10)}`, traceparent));
      }
      return json(res, 200, { statuses, traceparent });
    }
    req.resume();
    json(res, 404, { error: "no such test endpoint" });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: String(err) });
      else res.destroy();
    });
  });
  if (opts.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = opts.keepAliveTimeoutMs;
  const wss = new WebSocketServer({ server });
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });

  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;

  return Object.assign(app, {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    events,
    nextRequest(prefix: string) {
      return new Promise<SeenRequest>((resolve) => waiters.push({ prefix, resolve }));
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  });
}
