/**
 * CPU time and resident memory of a process and its descendants, read from /proc (Linux). nginx
 * and HAProxy do their work in a child of the process we started, so both are summed over the tree.
 */
import { readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
    }
  } catch {
    // process gone or no /proc
  }
  return out;
}

/** `pid` and its descendants alive now. */
export function processTree(pid: number): number[] {
  return tree(pid);
}

function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length && all.length < 64; i++) all.push(...children(all[i]!));
  return all;
}

/** user+system CPU seconds of `pid` and its descendants (those alive now). */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of tree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(rest[11]) + Number(rest[12]);
    } catch {
      // gone
    }
  }
  return ticks / ticksPerSecond();
}

/** Resident set size in bytes of `pid` and its descendants. */
export function rssBytes(pid: number): number {
  let kb = 0;
  for (const p of tree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}

/** Samples CPU over a window and the peak RSS seen, for a set of PIDs measured together. */
export function startUsageSampler(
  pids: readonly number[],
  intervalMs = 250,
): { stop(): { cpuSeconds: number; wallSeconds: number; peakRssBytes: number } } {
  const t0 = performance.now();
  const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  let peak = pids.reduce((s, p) => s + rssBytes(p), 0);
  const timer = setInterval(() => {
    peak = Math.max(
      peak,
      pids.reduce((s, p) => s + rssBytes(p), 0),
    );
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(
        peak,
        pids.reduce((s, p) => s + rssBytes(p), 0),
      );
      return {
        cpuSeconds: pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0,
        wallSeconds: (performance.now() - t0) / 1000,
        peakRssBytes: peak,
      };
    },
  };
}

/** Whole-host CPU counters from /proc/stat: busy and total jiffies (all cores). */
function hostTicks(): { busy: number; total: number } {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = f.reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/**
 * Measures how busy the whole machine was (all processes, all cores, 0..100 %) between start and
 * stop: on a shared machine this tells a reader how much of a result's noise came from neighbours.
 */
export function startHostBusy(): { stop(): number } {
  const a = hostTicks();
  return {
    stop() {
      const b = hostTicks();
      const total = b.total - a.total;
      return total > 0 ? (100 * (b.busy - a.busy)) / total : NaN;
    },
  };
}

/**
 * Waits (up to `maxWaitMs`) until the machine has been mostly idle for a second — other people's
 * builds and tests share it — so a measurement starts in a quiet moment. Returns the busy % seen last.
 */
export async function waitQuiet(maxWaitMs: number, busyBelowPct = 35): Promise<number> {
  const until = performance.now() + maxWaitMs;
  let last: number;
  do {
    const h = startHostBusy();
    await new Promise((r) => setTimeout(r, 1000));
    last = h.stop();
    if (last < busyBelowPct) return last;
  } while (performance.now() < until);
  return last;
}
