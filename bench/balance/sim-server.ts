/**
 * A simulated application server that behaves like a real one where balancing is concerned: a
 * fixed number of worker slots, a FIFO queue behind them, service times drawn from an exponential
 * or lognormal distribution and divided by the server's speed, and sleep-based service (timers),
 * so two shared cores are not the bottleneck. Some requests make a nested call back to their own
 * server *through its sidecar*, carrying the incoming `traceparent`, as an app that propagates
 * trace context would; the sidecar must recognise it as nested.
 *
 * The nested endpoint needs no worker slot: an outer call holding its slot while waiting for a
 * nested call that needs a slot would deadlock a full server (real thread pools do exactly that;
 * it is not what this bench measures).
 *
 * Events: `setSlowdown(factor)` divides the speed; `kill()` resets every connection and refuses
 * new ones (a crashed process); `revive()` listens on the same port again.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { request as undiciRequest } from "undici";

export interface ServiceDist {
  readonly kind: "exponential" | "lognormal";
  /** Lognormal shape (σ of the underlying normal). */
  readonly sigma?: number;
}

export interface SimServerConfig {
  readonly id: string;
  readonly slots: number;
  /** Mean service time at speed 1, ms. */
  readonly baseMeanMs: number;
  readonly speed: number;
  readonly dist: ServiceDist;
  /** Probability that a request makes one nested call back through its sidecar. */
  readonly nestedProbability: number;
  /** Mean service of the nested call, as a fraction of the server's mean service. */
  readonly nestedFraction: number;
  /** Starts dead (a server added later is one that comes up mid-run). */
  readonly startDown?: boolean;
}

export interface SimServerState {
  readonly id: string;
  readonly alive: boolean;
  readonly slots: number;
  readonly busy: number;
  readonly queued: number;
  /** Mean service time now (ms), including any slowdown. */
  readonly meanServiceMs: number;
  readonly completed: number;
  readonly nestedServed: number;
  readonly busyMs: number;
}

function gaussian(): number {
  let u = 0;
  while (u === 0) u = Math.random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
}

export function sampleService(meanMs: number, dist: ServiceDist): number {
  if (dist.kind === "exponential") return -Math.log(1 - Math.random()) * meanMs;
  const sigma = dist.sigma ?? 1;
  const mu = Math.log(meanMs) - (sigma * sigma) / 2;
  return Math.exp(mu + sigma * gaussian());
}

const BODY = Buffer.alloc(200, "x");

export class SimServer {
  readonly config: SimServerConfig;
  port = 0;
  /** Where nested calls go: this server's own sidecar. */
  sidecarUrl: string | undefined;
  #server: Server;
  #alive = false;
  #slowdown = 1;
  #busy = 0;
  #queue: (() => void)[] = [];
  #generation = 0;
  #sockets = new Set<Socket>();
  #completed = 0;
  #nestedServed = 0;
  #busyMs = 0;

  constructor(config: SimServerConfig) {
    this.config = config;
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 65_000;
    this.#server.on("connection", (s: Socket) => {
      this.#sockets.add(s);
      s.once("close", () => this.#sockets.delete(s));
    });
  }

  get meanServiceMs(): number {
    return (this.config.baseMeanMs / this.config.speed) * this.#slowdown;
  }

  state(): SimServerState {
    return {
      id: this.config.id,
      alive: this.#alive,
      slots: this.config.slots,
      busy: this.#busy,
      queued: this.#queue.length,
      meanServiceMs: this.meanServiceMs,
      completed: this.#completed,
      nestedServed: this.#nestedServed,
      busyMs: this.#busyMs,
    };
  }

  async start(): Promise<number> {
    await this.#listen(0);
    if (this.config.startDown) this.kill();
    return this.port;
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => {
        this.#server.off("error", reject);
        const addr = this.#server.address();
        this.port = typeof addr === "object" && addr ? addr.port : port;
        this.#alive = true;
        resolve();
      });
    });
  }

  setSlowdown(factor: number): void {
    this.#slowdown = factor;
  }

  /** Crash: every connection reset, queued and running work lost, new connections refused. */
  kill(): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#server.close();
    for (const s of this.#sockets) s.destroy();
    this.#dropWork();
  }

  async revive(): Promise<void> {
    if (this.#alive) return;
    await this.#listen(this.port);
  }

  /** Between runs: forget queued and running work (their connections are reset), normal speed. */
  async reset(): Promise<void> {
    this.#slowdown = 1;
    for (const s of this.#sockets) s.destroy();
    this.#dropWork();
    this.#completed = 0;
    this.#nestedServed = 0;
    this.#busyMs = 0;
    if (!this.config.startDown) await this.revive();
    else this.kill();
  }

  #dropWork(): void {
    this.#generation++;
    this.#busy = 0;
    this.#queue = [];
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    if (req.url === "/nested") {
      const ms = sampleService(this.meanServiceMs * this.config.nestedFraction, this.config.dist);
      setTimeout(() => {
        this.#nestedServed++;
        this.#reply(res);
      }, ms);
      return;
    }
    const gen = this.#generation;
    const run = () => {
      if (gen !== this.#generation) return;
      this.#busy++;
      const started = performance.now();
      const total = sampleService(this.meanServiceMs, this.config.dist);
      const finish = () => {
        if (gen !== this.#generation) return;
        this.#busy--;
        this.#completed++;
        this.#busyMs += performance.now() - started;
        this.#reply(res);
        const next = this.#queue.shift();
        if (next) next();
      };
      const tp = req.headers.traceparent;
      if (this.sidecarUrl && typeof tp === "string" && Math.random() < this.config.nestedProbability) {
        // Half the work, a nested call through our own sidecar with the same trace, the other half.
        setTimeout(() => {
          if (gen !== this.#generation) return;
          undiciRequest(`${this.sidecarUrl}/nested`, {
            headers: { traceparent: tp },
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
          })
            .then((r) => r.body.dump())
            .catch(() => undefined)
            .finally(() => setTimeout(finish, total / 2));
        }, total / 2);
      } else {
        setTimeout(finish, total);
      }
    };
    if (this.#busy < this.config.slots) run();
    else this.#queue.push(run);
  }

  #reply(res: ServerResponse): void {
    if (res.destroyed) return;
    res.writeHead(200, {
      "content-type": "text/plain",
      "content-length": BODY.length,
      "x-sim-server": this.config.id,
    });
    res.end(BODY);
  }

  close(): Promise<void> {
    this.#alive = false;
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
