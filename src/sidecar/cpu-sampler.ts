/**
 * Host CPU utilisation from `os.cpus()` tick deltas, sampled on an unref'd timer so it never keeps
 * the process alive and costs nothing on the request path. In a container this is the host's (or
 * the cgroup-visible cores') utilisation, which is what the `cpu` balancer of the sources used.
 */
import { cpus, type CpuInfo } from "node:os";

export interface CpuSampler {
  /** Utilisation 0..1 over all cores during the last sampling period (0 before the first one). */
  readonly utilisation: number;
  readonly cores: number;
  close(): void;
}

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

export function createCpuSampler(intervalMs = 500, readCpus: () => CpuInfo[] = cpus): CpuSampler {
  const first = readCpus();
  let prev = sumTicks(first);
  let utilisation = 0;
  const cores = Math.max(1, first.length);
  const timer = setInterval(() => {
    try {
      const now = sumTicks(readCpus());
      const total = now.total - prev.total;
      const idle = now.idle - prev.idle;
      if (total > 0) utilisation = Math.min(1, Math.max(0, 1 - idle / total));
      prev = now;
    } catch {
      // Keep the last figure: a failed read must not take the sidecar down.
    }
  }, intervalMs);
  timer.unref();
  return {
    get utilisation() {
      return utilisation;
    },
    cores,
    close: () => clearInterval(timer),
  };
}

/** A fixed figure, for tests and for hosts where CPU should not be reported. */
export function fixedCpu(utilisation: number, cores = 1): CpuSampler {
  return { utilisation, cores, close: () => undefined };
}
