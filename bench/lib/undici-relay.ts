/**
 * The least a Node proxy can do per exchange with undici: a raw dispatch handler that drops
 * hop-by-hop response headers and streams the body with backpressure. Used by the minimal undici
 * proxy (the overhead floor the sidecar is compared with) and by the balance bench's oracle.
 */
import type { ServerResponse } from "node:http";
import type { Dispatcher } from "undici";

export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "expect",
  "te",
  "trailer",
  "proxy-connection",
]);

/** Request headers without hop-by-hop fields, as a flat [name, value, …] array for undici. */
export function endToEndHeaders(raw: readonly string[]): string[] {
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) headers.push(raw[i]!, raw[i + 1]!);
  }
  return headers;
}

export class UndiciRelay implements Dispatcher.DispatchHandler {
  constructor(
    private readonly res: ServerResponse,
    /** Called once the exchange is over, either way. */
    private readonly done?: () => void,
    /** Headers of the 502 answered when the upstream fails before responding. */
    private readonly errorHeaders?: Record<string, string>,
  ) {}
  onConnect(): void {}
  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const k = raw[i]!.toString("latin1");
      if (HOP_BY_HOP.has(k.toLowerCase())) continue;
      out.push(k, raw[i + 1]!.toString("latin1"));
    }
    this.res.writeHead(status, out as unknown as string[][]);
    this.res.on("drain", resume);
    return true;
  }
  onData(chunk: Buffer): boolean {
    return this.res.write(chunk);
  }
  onComplete(): void {
    this.done?.();
    this.res.end();
  }
  onError(): void {
    this.done?.();
    if (!this.res.headersSent) this.res.writeHead(502, this.errorHeaders).end();
    else this.res.destroy();
  }
}
