/**
 * HTTP Upgrade (WebSocket) pass-through: the handshake is re-sent to the upstream on a fresh TCP
 * connection with the same header rules as ordinary requests (Upgrade/Connection kept), and from
 * then on bytes flow both ways untouched. Whatever the upstream answers — 101 or a refusal —
 * reaches the client as the upstream wrote it. The whole connection is one call.
 */
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { STATUS_CODES, type IncomingMessage } from "node:http";
import { ErrorCodes, classifyUpstreamError, PROXY_ERROR_HEADER, type ErrorCode } from "./errors.js";

export interface UpgradeTarget {
  readonly host: string;
  readonly port: number;
}

/** Calls `onEnd` once when both sides are closed; `error` set when the upstream could not be reached. */
export function forwardUpgrade(
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  target: UpgradeTarget,
  headers: readonly string[],
  via: string,
  connectTimeoutMs: number,
  onEnd: (outcome: "ok" | ErrorCode, status: number) => void,
): Socket {
  let ended = false;
  let connected = false;
  let status = 0;
  const finish = (outcome: "ok" | ErrorCode) => {
    if (ended) return;
    ended = true;
    onEnd(outcome, status);
  };
  const upstream = connect({ host: target.host, port: target.port });
  upstream.setNoDelay(true);
  const timer = setTimeout(
    () => upstream.destroy(Object.assign(new Error("connect timeout"), { code: "UND_ERR_CONNECT_TIMEOUT" })),
    connectTimeoutMs,
  );
  upstream.once("connect", () => {
    clearTimeout(timer);
    connected = true;
    let head1 = `${req.method ?? "GET"} ${req.url ?? "/"} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head1 += `${headers[i]}: ${headers[i + 1]}\r\n`;
    upstream.write(head1 + "\r\n");
    if (head.length > 0) upstream.write(head);
    // Note the status the app answered with, for the call record, from the first bytes back.
    upstream.once("data", (chunk: Buffer) => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(chunk.toString("latin1", 0, 16));
      status = m ? Number(m[1]) : 0;
    });
    upstream.pipe(client);
    client.pipe(upstream);
  });
  upstream.on("error", (err) => {
    clearTimeout(timer);
    if (!connected) {
      const code = classifyUpstreamError(err);
      const spec = ErrorCodes[code];
      status = spec.status;
      const body = JSON.stringify({ error: { code, message: spec.message } });
      if (client.writable) {
        client.end(
          `HTTP/1.1 ${spec.status} ${STATUS_CODES[spec.status]}\r\n${PROXY_ERROR_HEADER}: ${code}\r\nvia: ${via}\r\n` +
            `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
      }
      finish(code);
    } else {
      client.destroy();
      finish("UPSTREAM_ERROR");
    }
  });
  client.on("error", () => upstream.destroy());
  upstream.on("close", () => {
    client.destroy();
    finish("ok");
  });
  client.on("close", () => {
    upstream.destroy();
  });
  return upstream;
}
