/** What a result was measured on: every figure in BENCHMARKS.md names its machine and date. */
import { execFileSync, spawnSync } from "node:child_process";
import { cpus, loadavg, release, totalmem } from "node:os";

export interface MachineInfo {
  readonly date: string;
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memGiB: number;
  readonly kernel: string;
  readonly node: string;
  readonly loadavgAtStart: readonly number[];
  readonly tools: Record<string, string>;
}

function version(cmd: string, args: string[], re: RegExp): string {
  // nginx prints its version on stderr; wrk exits non-zero after printing it.
  const r = spawnSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  const text = `${r.stdout?.toString() ?? ""}${r.stderr?.toString() ?? ""}`;
  return re.exec(text)?.[1] ?? "unknown";
}

/** How each tool the benches run names its version. */
const VERSION_OF = {
  nginx: { args: ["-v"], re: /nginx\/(\S+)/ },
  haproxy: { args: ["-v"], re: /version (\S+)/ },
  wrk: { args: ["--version"], re: /wrk (\S+)/ },
} as const;

/** The version of nginx, HAProxy or wrk at `bin`, as it prints it ("unknown" if it does not). */
export function toolVersion(tool: keyof typeof VERSION_OF, bin: string): string {
  const v = VERSION_OF[tool];
  return version(bin, [...v.args], v.re);
}

export function machineInfo(tools: Record<string, string> = {}): MachineInfo {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const m = /Model name:\s+(.+)/.exec(execFileSync("lscpu").toString());
    if (m) model = m[1]!.trim();
  } catch {
    // keep os.cpus()
  }
  const versions: Record<string, string> = {};
  for (const tool of ["nginx", "haproxy", "wrk"] as const)
    if (tools[tool]) versions[tool] = toolVersion(tool, tools[tool]);
  return {
    date: new Date().toISOString(),
    nproc: cpus().length,
    cpuModel: model,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    loadavgAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    tools: versions,
  };
}

export function machineLine(m: MachineInfo): string {
  return `${m.date.slice(0, 16).replace("T", " ")} UTC · ${m.nproc} × ${m.cpuModel} (shared VM) · ${m.memGiB} GiB · Linux ${m.kernel} · Node ${m.node}${
    Object.keys(m.tools).length
      ? " · " +
        Object.entries(m.tools)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")
      : ""
  } · load avg at start ${m.loadavgAtStart.join(" ")}`;
}
