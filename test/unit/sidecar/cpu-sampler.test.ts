import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { CpuInfo } from "node:os";
import { createCpuSampler } from "../../../src/sidecar/cpu-sampler.js";

function cpu(busy: number, idle: number): CpuInfo {
  return { model: "x", speed: 1, times: { user: busy, nice: 0, sys: 0, idle, irq: 0 } };
}

describe("cpu sampler", () => {
  it("turns tick deltas over all cores into utilisation", async () => {
    let reads = 0;
    const samples = [
      [cpu(0, 0), cpu(0, 0)],
      [cpu(30, 70), cpu(90, 10)],
    ];
    const s = createCpuSampler(5, () => samples[Math.min(reads++, 1)]!);
    try {
      assert.equal(s.cores, 2);
      assert.equal(s.utilisation, 0);
      for (let i = 0; i < 200 && s.utilisation === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(s.utilisation, 0.6);
    } finally {
      s.close();
    }
  });
});
