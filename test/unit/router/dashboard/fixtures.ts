/** Snapshots and an SSE reader shared by the dashboard's unit tests. */
import { request, type IncomingMessage } from "node:http";
import type { RouterSnapshot, ServerSnapshot } from "../../../../src/router/dashboard/snapshot.js";

export function server(id: string, over: Partial<ServerSnapshot> = {}): ServerSnapshot {
  return {
    id,
    state: "ready",
    rank: 1,
    score: 0.5,
    busy: 1,
    reportedInFlight: 1,
    inFlight: 0,
    cpu: 0.2,
    requestsTotal: 0,
    errorsTotal: 0,
    latencyP50Ms: 10,
    latencyP99Ms: 50,
    reportAgeMs: 40,
    ...over,
  };
}

export function snapshot(
  servers: ServerSnapshot[],
  over: Partial<RouterSnapshot["router"]> = {},
): RouterSnapshot {
  return {
    router: {
      uptimeSeconds: 12,
      draining: false,
      mode: "proxy",
      inFlight: 0,
      requestsTotal: servers.reduce((n, s) => n + s.requestsTotal, 0),
      failoversTotal: 0,
      latencyP50Ms: 10,
      latencyP99Ms: 60,
      ...over,
    },
    pools: [{ name: "default", algorithm: "adaptive", params: { choices: 2 }, servers }],
  };
}

export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/** Reads server-sent events from a real HTTP response; `next` waits (bounded) for the next one. */
export class SseReader {
  readonly events: SseEvent[] = [];
  comments = 0;
  #buf = "";
  #waiters: (() => void)[] = [];
  ended = false;

  constructor(readonly res: IncomingMessage) {
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      this.#buf += chunk;
      let i: number;
      while ((i = this.#buf.indexOf("\n\n")) >= 0) {
        const block = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 2);
        let event = "message";
        const data: string[] = [];
        let isEvent = false;
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) this.comments++;
          else if (line.startsWith("event: ")) {
            event = line.slice(7);
            isEvent = true;
          } else if (line.startsWith("data: ")) {
            isEvent = true;
            data.push(line.slice(6));
          }
        }
        if (isEvent) this.events.push({ event, data: data.join("\n") });
      }
      this.#wake();
    });
    res.on("end", () => {
      this.ended = true;
      this.#wake();
    });
    res.on("close", () => {
      this.ended = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Waits until `cond()` holds, at most `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.ended) throw new Error("stream ended");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error("timed out waiting for SSE data");
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.res.destroy();
  }
}

export function openSse(
  base: string,
  headers: Record<string, string> = {},
): Promise<{ res: IncomingMessage; reader?: SseReader }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/v1/events`,
      { headers: { accept: "text/event-stream", ...headers } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          resolve({ res });
          return;
        }
        resolve({ res, reader: new SseReader(res) });
      },
    );
    req.on("error", reject);
    req.end();
  });
}
