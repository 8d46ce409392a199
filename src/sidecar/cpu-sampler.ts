/**
 * CPU utilisation 0..1, sampled on an unref'd timer so it never keeps the process alive and costs
 * nothing on the request path.
 *
 * On the host it is the `os.cpus()` tick delta over all cores. In a container with a CPU limit
 * (Kubernetes `resources.limits.cpu`, Docker `--cpus`) that figure is the node's: a pod throttled at
 * its quota would look idle to the `cpu` and `adaptive` balancers. So on Linux the sampler first
 * looks for a CFS quota on the cgroup this process runs in — cgroup v2 (`cpu.max`, usage from
 * `cpu.stat` `usage_usec`) or v1 (`cpu.cfs_quota_us` / `cpu.cfs_period_us`, usage from
 * `cpuacct.usage`) — and when there is one, utilisation is the cgroup's CPU time used in the period
 * divided by the period × the quota in cores. Without a quota (`max`, `-1`), off Linux, or when the
 * files are missing or unreadable, it falls back to the host figure. The quota is re-read on every
 * sample, so an in-place resize or a limit removed at run time takes effect within one period.
 *
 * The files are read with `readFileSync`: they are a few bytes of kernel memory (cgroupfs never
 * touches a disk), so a read is a few microseconds, less than a round trip through libuv's thread
 * pool (which `fs.readFile` would take, and which DNS lookups also queue on), and `os.cpus()`
 * reads /proc/stat synchronously anyway. Every 500 ms that is noise.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, platform as osPlatform, type CpuInfo } from "node:os";
import { monotonicClock, type Clock } from "../shared/clock.js";
import type { CpuSource } from "../shared/load-report.js";

export interface CpuSampler {
  /** Utilisation 0..1 of {@link capacityCores} during the last sampling period (0 before the first one). */
  readonly utilisation: number;
  /** The host's logical CPU count (`os.cpus()`). */
  readonly cores: number;
  /** What the utilisation was measured against in the last period. */
  readonly source: CpuSource;
  /** The cores a utilisation of 1 stands for: the cgroup quota (may be fractional), else {@link cores}. */
  readonly capacityCores: number;
  close(): void;
}

/** Reads a small file; undefined when it is missing or unreadable. */
export type ReadSmallFile = (path: string) => string | undefined;

export interface CpuSamplerOptions {
  /** Sampling period (ms); 0 starts no timer (tests call `sample()`). */
  readonly intervalMs?: number;
  readonly readCpus?: () => CpuInfo[];
  readonly readFile?: ReadSmallFile;
  readonly clock?: Clock;
  /** Defaults to `os.platform()`; cgroups are looked for on "linux" only. */
  readonly platform?: NodeJS.Platform;
  /** Where cgroupfs is mounted. */
  readonly cgroupRoot?: string;
  /** CPUs this process may run on (a cpuset caps a quota larger than it); defaults to `os.availableParallelism()`. */
  readonly usableCores?: number;
}

export const readSmallFile: ReadSmallFile = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

interface Ticks {
  readonly idle: number;
  readonly total: number;
}

function sumTicks(list: readonly CpuInfo[]): Ticks {
  let idle = 0;
  let total = 0;
  for (const c of list) {
    const t = c.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** Where one cgroup version keeps the quota (each directory, leaf first) and the usage counter. */
interface CgroupLayout {
  readonly source: "cgroup-v2" | "cgroup-v1";
  /** The directories whose quota applies: this process's cgroup up to the mount's root. */
  readonly limitDirs: readonly string[];
  /** The file holding this cgroup's cumulative CPU time. */
  readonly usageFile: string;
}

/** A cgroup's CPU quota in cores, from its files; undefined when it has none (or they are garbage). */
function quotaCores(read: ReadSmallFile, layout: CgroupLayout): number | undefined {
  let min: number | undefined;
  for (const dir of layout.limitDirs) {
    let cores: number | undefined;
    if (layout.source === "cgroup-v2") {
      // "max 100000" (no limit) or "<quota> <period>", both in microseconds.
      const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(read(`${dir}/cpu.max`) ?? "");
      if (m) cores = ratio(Number(m[1]), Number(m[2]));
    } else {
      // -1 is no limit.
      const quota = integer(read(`${dir}/cpu.cfs_quota_us`));
      const period = integer(read(`${dir}/cpu.cfs_period_us`));
      if (quota !== undefined && period !== undefined) cores = ratio(quota, period);
    }
    // A parent's limit caps its children's: the tightest one up the tree is the one that bites.
    if (cores !== undefined && (min === undefined || cores < min)) min = cores;
  }
  return min;
}

function ratio(quota: number, period: number): number | undefined {
  return quota > 0 && period > 0 && Number.isFinite(quota / period) ? quota / period : undefined;
}

function integer(text: string | undefined): number | undefined {
  const m = /^\s*(-?\d+)\s*$/.exec(text ?? "");
  return m ? Number(m[1]) : undefined;
}

/** Cumulative CPU time of the cgroup in microseconds. */
function usageMicros(read: ReadSmallFile, layout: CgroupLayout): number | undefined {
  const text = read(layout.usageFile);
  if (text === undefined) return undefined;
  if (layout.source === "cgroup-v2") {
    const m = /^usage_usec\s+(\d+)\s*$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  }
  const ns = /^\s*(\d+)\s*$/.exec(text); // cpuacct.usage is in nanoseconds
  return ns ? Number(ns[1]) / 1000 : undefined;
}

/**
 * This process's cgroup path per hierarchy from /proc/self/cgroup (`0::/path` for v2,
 * `N:cpu,cpuacct:/path` for v1). Paths outside our namespace ("/..") are dropped.
 */
function ownCgroupPaths(read: ReadSmallFile): { v2?: string; v1: Map<string, string> } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of (read("/proc/self/cgroup") ?? "").split("\n")) {
    const m = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (!m || m[3]!.split("/").includes("..")) continue;
    if (m[1] === "0" && m[2] === "") v2 = m[3]!;
    else for (const c of m[2]!.split(",")) v1.set(c, m[3]!);
  }
  return { ...(v2 !== undefined && { v2 }), v1 };
}

/**
 * `mount` + `path` when this process's own cgroup is visible there, else `mount` itself: inside a
 * container the container's cgroup is mounted at the root (a cgroup namespace, or a bind mount
 * while /proc/self/cgroup still shows the host's path). Returns the directories leaf first.
 */
function chain(
  read: ReadSmallFile,
  mount: string,
  path: string | undefined,
  probe: string,
): readonly string[] | undefined {
  const parts = (path ?? "/").split("/").filter((p) => p !== "");
  const leaf = parts.length > 0 ? `${mount}/${parts.join("/")}` : mount;
  if (parts.length > 0 && read(`${leaf}/${probe}`) !== undefined) {
    const dirs: string[] = [];
    for (let n = parts.length; n >= 0; n--)
      dirs.push(n > 0 ? `${mount}/${parts.slice(0, n).join("/")}` : mount);
    return dirs;
  }
  return read(`${mount}/${probe}`) !== undefined ? [mount] : undefined;
}

/** The cgroup layout whose usage counter is readable (v2 first), or undefined on a host without one. */
function findCgroup(read: ReadSmallFile, root: string): CgroupLayout | undefined {
  const own = ownCgroupPaths(read);
  const v2 = chain(read, root, own.v2, "cpu.stat");
  if (v2 !== undefined) {
    const layout: CgroupLayout = { source: "cgroup-v2", limitDirs: v2, usageFile: `${v2[0]}/cpu.stat` };
    // Without a usage counter a cgroup's quota cannot be measured against: try v1, else the host.
    if (usageMicros(read, layout) !== undefined) return layout;
  }
  // v1 mounts cpu and cpuacct apart or together ("cpu,cpuacct", usually with both names as links).
  const mounts = ["cpu", "cpu,cpuacct", "cpuacct,cpu"].map((m) => `${root}/${m}`);
  const acctMounts = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"].map((m) => `${root}/${m}`);
  for (const cpuMount of mounts) {
    const limitDirs = chain(read, cpuMount, own.v1.get("cpu"), "cpu.cfs_period_us");
    if (limitDirs === undefined) continue;
    for (const acctMount of acctMounts) {
      const acct = chain(read, acctMount, own.v1.get("cpuacct"), "cpuacct.usage");
      if (acct === undefined) continue;
      const layout: CgroupLayout = { source: "cgroup-v1", limitDirs, usageFile: `${acct[0]}/cpuacct.usage` };
      if (usageMicros(read, layout) !== undefined) return layout;
    }
  }
  return undefined;
}

export function createCpuSampler(options: CpuSamplerOptions = {}): CpuSampler & { sample(): void } {
  const readCpus = options.readCpus ?? cpus;
  const read = options.readFile ?? readSmallFile;
  const clock = options.clock ?? monotonicClock;
  const intervalMs = options.intervalMs ?? 500;
  const first = readCpus();
  const cores = Math.max(1, first.length);
  const usable = Math.max(1, options.usableCores ?? availableParallelism());
  const layout =
    (options.platform ?? osPlatform()) === "linux"
      ? findCgroup(read, options.cgroupRoot ?? "/sys/fs/cgroup")
      : undefined;

  let prevTicks = sumTicks(first);
  let prevUsage: { at: number; micros: number } | undefined;
  let utilisation = 0;
  let source: CpuSource = "host";
  let capacityCores = cores;

  /** One cgroup period; false when there is no quota (or no readable usage) to measure against. */
  const sampleCgroup = (): boolean => {
    if (layout === undefined) return false;
    const quota = quotaCores(read, layout);
    const micros = quota !== undefined ? usageMicros(read, layout) : undefined;
    if (quota === undefined || micros === undefined) {
      prevUsage = undefined;
      return false;
    }
    const at = clock.now();
    const prev = prevUsage;
    prevUsage = { at, micros };
    source = layout.source;
    // A quota above the CPUs this process may run on cannot be used up: measure against what can.
    capacityCores = Math.min(quota, usable);
    // Without a baseline (first period, or the counter went back) the last figure stands.
    if (prev !== undefined && at > prev.at && micros >= prev.micros) {
      const used = micros - prev.micros;
      utilisation = Math.min(1, Math.max(0, used / ((at - prev.at) * 1000 * capacityCores)));
    }
    return true;
  };

  const sample = (): void => {
    try {
      // Host ticks are kept current either way, so a limit removed at run time falls back at once.
      const now = sumTicks(readCpus());
      const total = now.total - prevTicks.total;
      const idle = now.idle - prevTicks.idle;
      prevTicks = now;
      if (sampleCgroup()) return;
      source = "host";
      capacityCores = cores;
      if (total > 0) utilisation = Math.min(1, Math.max(0, 1 - idle / total));
    } catch {
      // Keep the last figure: a failed read must not take the sidecar down.
    }
  };

  // The cgroup baseline, so the first period already has a figure and `source` is right from the start.
  try {
    sampleCgroup();
  } catch {
    // Same as in sample(): the host figure it is.
  }
  const timer = intervalMs > 0 ? setInterval(sample, intervalMs) : undefined;
  timer?.unref();
  return {
    get utilisation() {
      return utilisation;
    },
    get source() {
      return source;
    },
    get capacityCores() {
      return capacityCores;
    },
    cores,
    sample,
    close: () => clearInterval(timer),
  };
}

/** A fixed figure, for tests and for hosts where CPU should not be reported. */
export function fixedCpu(utilisation: number, cores = 1): CpuSampler {
  return { utilisation, cores, source: "host", capacityCores: cores, close: () => undefined };
}
