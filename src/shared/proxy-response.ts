import type { ServerResponse } from "node:http";
import { ErrorCodes, PROXY_ERROR_HEADER, type ErrorCode } from "./errors.js";

/**
 * Answers a request with an error the proxy made itself: the status from the error table, a JSON
 * body `{ "error": { "code", "message" } }`, and the `x-tasklb-error` header so clients and
 * operators can tell it from the app's own errors.
 */
export function writeProxyError(
  res: ServerResponse,
  code: ErrorCode,
  via: string,
  extraHeaders?: Record<string, string>,
  message?: string,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const spec = ErrorCodes[code];
  const body = JSON.stringify({ error: { code, message: message ?? spec.message } });
  res.writeHead(spec.status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    via,
    [PROXY_ERROR_HEADER]: code,
    ...extraHeaders,
  });
  res.end(body);
}

/** JSON answer for control/admin endpoints. */
export function writeJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers?: Record<string, string>,
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(body);
}
