/** Closed-loop throughput with `wrk`: runs it (optionally pinned) and parses its summary. */
import { spawnProc } from "./proc.js";

export interface WrkOptions {
  readonly url: string;
  readonly connections: number;
  readonly threads: number;
  readonly durationS: number;
  readonly cpus?: string | undefined;
}

export interface WrkResult {
  readonly requestsPerSec: number;
  readonly requests: number;
  readonly non2xx: number;
  readonly socketErrors: number;
  /** wrk's mean latency (ms); closed-loop, so only indicative. */
  readonly meanLatencyMs: number;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "s" ? n * 1000 : unit === "m" ? n * 60_000 : n;
}

export function parseWrk(text: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rps) throw new Error(`could not parse wrk output:\n${text}`);
  const total = /(\d+) requests in/.exec(text);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const lat = /Latency\s+([\d.]+)(us|ms|s|m)/.exec(text);
  return {
    requestsPerSec: Number(rps[1]),
    requests: total ? Number(total[1]) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0,
    meanLatencyMs: lat ? toMs(lat[1]!, lat[2]!) : 0,
  };
}

export async function runWrk(wrkPath: string, o: WrkOptions): Promise<WrkResult> {
  const proc = spawnProc(
    "wrk",
    wrkPath,
    ["-t", String(o.threads), "-c", String(o.connections), "-d", `${o.durationS}s`, o.url],
    {
      cpus: o.cpus,
    },
  );
  const code = await new Promise<number | null>((resolve) => proc.child.once("close", resolve));
  await proc.stop();
  const text = proc.output.join("\n");
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${text}`);
  return parseWrk(text);
}
