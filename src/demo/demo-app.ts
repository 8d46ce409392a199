/**
 * A demo application server: a sleep-based service with a few worker slots and a queue, like a
 * thread-pool app server. Service times are lognormal around a mean, so each server has a speed;
 * `setSlowFactor` makes it slower for a while (the demo's "one server degrades" moment). Some
 * requests make a nested call back through the server's own sidecar with the same `traceparent`
 * (the sidecar must count that time once, inside the outer call).
 *
 * Answers `{"server": name, "ms": serviceMs}` with an `x-demo-server` header, so a load generator
 * can tell which server answered.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { request } from "undici";

export interface DemoAppOptions {
  readonly name: string;
  /** Requests served at once; the rest wait in the queue. */
  readonly workers: number;
  /** Mean service time (ms) at normal speed. */
  readonly meanMs: number;
  /** Shape of the lognormal service time (0 = constant). */
  readonly sigma?: number;
  /** Share of requests that make one nested call through `selfUrl`. */
  readonly nestedProbability?: number;
  /** Queue length beyond which requests are refused with 503. */
  readonly maxQueue?: number;
}

export interface DemoAppDeps {
  readonly random?: () => number;
}

export interface DemoApp {
  readonly name: string;
  listen(host?: string, port?: number): Promise<string>;
  close(): Promise<void>;
  /** Service times are multiplied by this (1 = normal). */
  setSlowFactor(factor: number): void;
  readonly slowFactor: number;
  /** Where nested calls go: the data URL of this app's own sidecar. */
  setSelfUrl(url: string | undefined): void;
  readonly stats: {
    readonly served: number;
    readonly nested: number;
    readonly busy: number;
    readonly queued: number;
  };
}

export const DEMO_SERVER_HEADER = "x-demo-server";

export function lognormal(random: () => number, mean: number, sigma: number): number {
  if (sigma <= 0) return mean;
  // Box–Muller; 1 - u keeps the log argument in (0, 1].
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return mean * Math.exp(sigma * z - (sigma * sigma) / 2);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createDemoApp(options: DemoAppOptions, deps: DemoAppDeps = {}): DemoApp {
  const random = deps.random ?? Math.random;
  const sigma = options.sigma ?? 0.5;
  const maxQueue = options.maxQueue ?? 1000;
  let slow = 1;
  let selfUrl: string | undefined;
  let busy = 0;
  let served = 0;
  let nested = 0;
  const queue: (() => void)[] = [];

  const acquire = (): Promise<void> | undefined => {
    if (busy < options.workers) {
      busy++;
      return Promise.resolve();
    }
    if (queue.length >= maxQueue) return undefined;
    return new Promise((resolve) => queue.push(resolve));
  };
  const releaseSlot = () => {
    const next = queue.shift();
    if (next) next();
    else busy--;
  };

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      [DEMO_SERVER_HEADER]: options.name,
    });
    res.end(text);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Drain the request body (the demo ignores it).
    req.resume();
    if (req.url?.startsWith("/nested")) {
      // Nested work is short and does not take a worker slot (the outer call holds one already).
      const ms = lognormal(random, options.meanMs * 0.2 * slow, sigma);
      await sleep(ms);
      nested++;
      return reply(res, 200, { server: options.name, ms: Math.round(ms), nested: true });
    }
    const slot = acquire();
    if (!slot) return reply(res, 503, { server: options.name, error: "queue full" });
    await slot;
    try {
      const ms = lognormal(random, options.meanMs * slow, sigma);
      const start = performance.now();
      const tp = req.headers.traceparent;
      if (selfUrl && random() < (options.nestedProbability ?? 0) && typeof tp === "string") {
        await sleep(ms / 2);
        try {
          const r = await request(`${selfUrl}/nested`, { headers: { traceparent: tp } });
          await r.body.dump();
        } catch {
          // A failed nested call does not fail the demo request.
        }
      }
      const left = ms - (performance.now() - start);
      if (left > 0) await sleep(left);
      served++;
      reply(res, 200, { server: options.name, ms: Math.round(ms) });
    } finally {
      releaseSlot();
    }
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) reply(res, 500, { server: options.name, error: "internal" });
    });
  });

  return {
    name: options.name,
    listen(host = "127.0.0.1", port = 0) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          const a = server.address() as AddressInfo;
          resolve(`http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
    setSlowFactor(f) {
      slow = f;
    },
    get slowFactor() {
      return slow;
    },
    setSelfUrl(url) {
      selfUrl = url;
    },
    get stats() {
      return { served, nested, busy, queued: queue.length };
    },
  };
}
