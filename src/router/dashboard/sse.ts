/**
 * Server-sent-event clients of the dashboard. Bounded on every axis a viewer controls: the number of
 * clients (the next one is refused with 503), and each client's unsent output (a client that stops
 * reading is dropped rather than buffered without limit). A comment line every `heartbeatMs` keeps
 * idle proxies from closing the stream and lets a dead client be noticed.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface SseHubOptions {
  readonly maxClients?: number;
  readonly heartbeatMs?: number;
  /** A client with more than this many bytes unsent is disconnected. */
  readonly maxBufferedBytes?: number;
}

export interface SseHub {
  readonly size: number;
  readonly maxClients: number;
  /** Starts a stream on `res` and writes `initial` to it; false (nothing written) when full. */
  accept(req: IncomingMessage, res: ServerResponse, initial: readonly string[]): boolean;
  /** Writes one pre-formatted chunk to every client. */
  broadcast(chunk: string): void;
  /** Ends every stream (router shutdown: open streams would hold the admin server open). */
  close(): void;
}

/** Formats one event; `data` must be a single line (JSON is). */
export function sseEvent(event: string, data: string): string {
  return `event: ${event}\ndata: ${data}\n\n`;
}

export function createSseHub(options: SseHubOptions = {}): SseHub {
  const maxClients = options.maxClients ?? 32;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const maxBufferedBytes = options.maxBufferedBytes ?? 1 << 20;
  const clients = new Set<ServerResponse>();
  let heartbeat: NodeJS.Timeout | undefined;

  const drop = (res: ServerResponse) => {
    clients.delete(res);
    if (clients.size === 0 && heartbeat !== undefined) {
      clearInterval(heartbeat);
      heartbeat = undefined;
    }
  };
  const send = (res: ServerResponse, chunk: string) => {
    if (res.destroyed || res.writableEnded) return drop(res);
    if (res.writableLength > maxBufferedBytes) {
      drop(res);
      res.destroy();
      return;
    }
    res.write(chunk);
  };

  return {
    get size() {
      return clients.size;
    },
    maxClients,
    accept(req, res, initial) {
      if (clients.size >= maxClients) return false;
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        // nginx and similar buffer responses unless told otherwise; a stream must flow.
        "x-accel-buffering": "no",
      });
      res.flushHeaders();
      req.socket.setNoDelay(true);
      clients.add(res);
      res.on("close", () => drop(res));
      res.write("retry: 3000\n\n");
      for (const chunk of initial) send(res, chunk);
      if (heartbeat === undefined) {
        heartbeat = setInterval(() => {
          for (const c of clients) send(c, ": heartbeat\n\n");
        }, heartbeatMs);
        heartbeat.unref();
      }
      return true;
    },
    broadcast(chunk) {
      for (const c of clients) send(c, chunk);
    },
    close() {
      for (const c of clients) c.end();
      clients.clear();
      if (heartbeat !== undefined) clearInterval(heartbeat);
      heartbeat = undefined;
    },
  };
}
