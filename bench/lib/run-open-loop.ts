/** Spawns the open-loop generator in its own (optionally pinned) process and returns its result. */
import type { OpenLoopConfig, OpenLoopResult } from "./open-loop.js";
import { benchModule, jsonLine, spawnProc } from "./proc.js";

export async function runOpenLoopProcess(cfg: OpenLoopConfig, cpus?: string): Promise<OpenLoopResult> {
  const proc = spawnProc(
    "open-loop",
    process.execPath,
    [benchModule("lib/open-loop-main.js"), JSON.stringify(cfg)],
    { cpus },
  );
  try {
    const limit = cfg.warmupMs + cfg.durationMs + cfg.timeoutMs + 20_000;
    return await proc.waitFor((line) => jsonLine(line)?.openLoopResult as OpenLoopResult | undefined, limit);
  } finally {
    await proc.stop();
  }
}
