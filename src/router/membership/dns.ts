/**
 * DNS membership: each `NAME:PORT` is resolved to all its addresses (the way a Kubernetes headless
 * Service lists its pods) and re-resolved every `dnsIntervalMs`; addresses that appear join the
 * pool and addresses that disappear leave it. A failed lookup keeps the last good set: a DNS hiccup
 * must not empty the pool.
 */
import { promises as dnsPromises } from "node:dns";
import type { DnsTarget, ServerAddress } from "../config.js";

export type LookupAll = (name: string) => Promise<readonly { address: string; family: number }[]>;

export const systemLookup: LookupAll = (name) => dnsPromises.lookup(name, { all: true });

export interface DnsWatcherOptions {
  readonly targets: readonly DnsTarget[];
  readonly intervalMs: number;
  readonly sidecarControlPort: number;
}

export interface DnsWatcherDeps {
  readonly lookup?: LookupAll;
  readonly onAdd: (address: ServerAddress) => void;
  readonly onRemove: (dataUrl: string) => void;
  readonly onError?: (name: string, err: unknown) => void;
}

export interface DnsWatcher {
  /** Resolves every name once now and applies the differences. */
  resolveNow(): Promise<void>;
  /** Re-resolves every intervalMs from now on. */
  start(): void;
  close(): void;
}

function hostForUrl(address: string, family: number): string {
  return family === 6 || address.includes(":") ? `[${address}]` : address;
}

export function createDnsWatcher(options: DnsWatcherOptions, deps: DnsWatcherDeps): DnsWatcher {
  const lookup = deps.lookup ?? systemLookup;
  // Per target: the data URLs of its last good resolution.
  const current = new Map<string, Set<string>>();
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function resolveTarget(t: DnsTarget): Promise<void> {
    const key = `${t.name}:${t.port}`;
    let addrs: readonly { address: string; family: number }[];
    try {
      addrs = await lookup(t.name);
    } catch (err) {
      deps.onError?.(t.name, err);
      return;
    }
    if (closed || addrs.length === 0) return;
    const next = new Map<string, ServerAddress>();
    for (const a of addrs) {
      const host = hostForUrl(a.address, a.family);
      const dataUrl = `http://${host}:${t.port}`;
      next.set(dataUrl, { dataUrl, controlUrl: `http://${host}:${options.sidecarControlPort}` });
    }
    const prev = current.get(key) ?? new Set<string>();
    for (const [url, addr] of next) if (!prev.has(url)) deps.onAdd(addr);
    for (const url of prev) if (!next.has(url)) deps.onRemove(url);
    current.set(key, new Set(next.keys()));
  }

  async function resolveNow(): Promise<void> {
    await Promise.all(options.targets.map(resolveTarget));
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(() => {
      void resolveNow().finally(schedule);
    }, options.intervalMs);
    timer.unref();
  }

  return {
    resolveNow,
    start() {
      if (options.targets.length === 0) return;
      schedule();
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
    },
  };
}
