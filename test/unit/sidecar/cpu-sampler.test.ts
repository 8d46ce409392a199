import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { CpuInfo } from "node:os";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FakeClock } from "../../../src/shared/clock.js";
import { createCpuSampler, readSmallFile, type CpuSamplerOptions } from "../../../src/sidecar/cpu-sampler.js";

function cpu(busy: number, idle: number): CpuInfo {
  return { model: "x", speed: 1, times: { user: busy, nice: 0, sys: 0, idle, irq: 0 } };
}

/** A host of 8 idle cores whose tick counters advance by 100 idle ticks per read. */
function idleHost(): () => CpuInfo[] {
  let n = 0;
  return () => {
    n++;
    return Array.from({ length: 8 }, () => cpu(0, n * 100));
  };
}

/** A fake filesystem: the test changes `files` between samples. */
function fakeFs(files: Record<string, string>) {
  const reads: string[] = [];
  return {
    files,
    reads,
    readFile: (path: string) => {
      reads.push(path);
      return files[path];
    },
  };
}

const V2 = "/sys/fs/cgroup";

function sampler(fs: ReturnType<typeof fakeFs>, extra: Partial<CpuSamplerOptions> = {}) {
  const clock = new FakeClock(1000);
  const s = createCpuSampler({
    intervalMs: 0,
    readCpus: idleHost(),
    readFile: fs.readFile,
    clock,
    platform: "linux",
    usableCores: 8,
    ...extra,
  });
  return { s, clock };
}

describe("cpu sampler: host", () => {
  it("turns tick deltas over all cores into utilisation, on its own timer", async () => {
    let reads = 0;
    const samples = [
      [cpu(0, 0), cpu(0, 0)],
      [cpu(30, 70), cpu(90, 10)],
    ];
    const s = createCpuSampler({
      intervalMs: 5,
      readCpus: () => samples[Math.min(reads++, 1)]!,
      readFile: () => undefined,
    });
    try {
      assert.equal(s.cores, 2);
      assert.equal(s.source, "host");
      assert.equal(s.capacityCores, 2);
      assert.equal(s.utilisation, 0);
      for (let i = 0; i < 200 && s.utilisation === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(s.utilisation, 0.6);
    } finally {
      s.close();
    }
  });

  it("never reads cgroup files off Linux", () => {
    const fs = fakeFs({
      [`${V2}/cpu.max`]: "50000 100000",
      [`${V2}/cpu.stat`]: "usage_usec 0\n",
    });
    const { s } = sampler(fs, { platform: "darwin" });
    s.sample();
    assert.equal(s.source, "host");
    assert.deepEqual(fs.reads, []);
  });

  it("the default reader returns a small file's text, and undefined for a missing one", () => {
    const dir = mkdtempSync(join(tmpdir(), "tasklb-cpu-"));
    try {
      writeFileSync(join(dir, "cpu.max"), "max 100000\n");
      assert.equal(readSmallFile(join(dir, "cpu.max")), "max 100000\n");
      assert.equal(readSmallFile(join(dir, "missing")), undefined);
      assert.equal(readSmallFile(dir), undefined, "a directory is not a file");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("cpu sampler: cgroup v2", () => {
  it("a pod using its whole 0.5-core limit reads 1, not the idle host's 0", () => {
    const fs = fakeFs({
      "/proc/self/cgroup": "0::/\n",
      [`${V2}/cpu.max`]: "50000 100000\n",
      [`${V2}/cpu.stat`]: "usage_usec 7000000\nuser_usec 6000000\nsystem_usec 1000000\n",
    });
    const { s, clock } = sampler(fs);
    assert.equal(s.source, "cgroup-v2", "known from the start");
    assert.equal(s.capacityCores, 0.5);
    assert.equal(s.cores, 8);
    clock.advance(500);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 7250000\nuser_usec 6200000\nsystem_usec 1050000\n";
    s.sample();
    assert.equal(s.utilisation, 1);
    clock.advance(500);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 7350000\n";
    s.sample();
    assert.equal(s.utilisation, 0.4, "100 ms of CPU in 500 ms of a half core");
  });

  it("clamps to [0, 1] and keeps the last figure when the counter goes back", () => {
    const fs = fakeFs({ [`${V2}/cpu.max`]: "100000 100000", [`${V2}/cpu.stat`]: "usage_usec 1000\n" });
    const { s, clock } = sampler(fs);
    clock.advance(100);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 901000\n"; // 900 ms in 100 ms: bursting over the quota
    s.sample();
    assert.equal(s.utilisation, 1);
    clock.advance(100);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 5\n";
    s.sample();
    assert.equal(s.utilisation, 1, "no baseline: the last figure stands");
    clock.advance(100);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 25005\n";
    s.sample();
    assert.equal(s.utilisation, 0.25);
  });

  it("a quota larger than the CPUs it may run on is measured against those CPUs", () => {
    const fs = fakeFs({ [`${V2}/cpu.max`]: "800000 100000", [`${V2}/cpu.stat`]: "usage_usec 0\n" });
    const { s, clock } = sampler(fs, { usableCores: 2 });
    assert.equal(s.capacityCores, 2);
    clock.advance(1000);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 1000000\n";
    s.sample();
    assert.equal(s.utilisation, 0.5);
  });

  it("finds its own cgroup below the mount and takes the tightest limit up the tree", () => {
    const leaf = `${V2}/system.slice/tasklb.service`;
    const fs = fakeFs({
      "/proc/self/cgroup": "0::/system.slice/tasklb.service\n",
      [`${leaf}/cpu.max`]: "max 100000\n",
      [`${leaf}/cpu.stat`]: "usage_usec 0\n",
      [`${V2}/system.slice/cpu.max`]: "150000 100000\n",
      [`${V2}/cpu.stat`]: "usage_usec 99999999\n",
    });
    const { s, clock } = sampler(fs);
    assert.equal(s.source, "cgroup-v2");
    assert.equal(s.capacityCores, 1.5);
    clock.advance(1000);
    fs.files[`${leaf}/cpu.stat`] = "usage_usec 750000\n";
    s.sample();
    assert.equal(s.utilisation, 0.5, "the service's own usage, not the whole host's");
  });

  it("no limit ('max'), missing or garbage files: the host figure", () => {
    const cases: Record<string, string>[] = [
      { [`${V2}/cpu.max`]: "max 100000\n", [`${V2}/cpu.stat`]: "usage_usec 5\n" },
      { [`${V2}/cpu.stat`]: "usage_usec 5\n" },
      { [`${V2}/cpu.max`]: "50000 100000\n" },
      { [`${V2}/cpu.max`]: "banana\n", [`${V2}/cpu.stat`]: "usage_usec 5\n" },
      { [`${V2}/cpu.max`]: "0 100000\n", [`${V2}/cpu.stat`]: "usage_usec 5\n" },
      { [`${V2}/cpu.max`]: "50000 100000\n", [`${V2}/cpu.stat`]: "user_usec 5\n" },
      { [`${V2}/cpu.max`]: "50000 100000\n", [`${V2}/cpu.stat`]: "usage_usec -5\n" },
      { "/proc/self/cgroup": "garbage\n\n0::/../../x\n" },
      {},
    ];
    for (const files of cases) {
      let n = 0;
      const { s, clock } = sampler(fakeFs(files), {
        // 8 cores, a quarter busy.
        readCpus: () => (n++, Array.from({ length: 8 }, () => cpu(n * 25, n * 75))),
      });
      clock.advance(500);
      s.sample();
      assert.equal(s.source, "host", JSON.stringify(files));
      assert.equal(s.capacityCores, 8);
      assert.equal(s.utilisation, 0.25, JSON.stringify(files));
    }
  });

  it("follows a limit set, resized and removed at run time", () => {
    const fs = fakeFs({ [`${V2}/cpu.max`]: "max 100000", [`${V2}/cpu.stat`]: "usage_usec 0\n" });
    const { s, clock } = sampler(fs);
    assert.equal(s.source, "host");
    fs.files[`${V2}/cpu.max`] = "100000 100000";
    clock.advance(500);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 100000\n";
    s.sample();
    assert.equal(s.source, "cgroup-v2");
    assert.equal(s.capacityCores, 1);
    clock.advance(500);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 400000\n";
    s.sample();
    assert.equal(s.utilisation, 0.6);
    fs.files[`${V2}/cpu.max`] = "200000 100000"; // in-place resize to 2 cores
    clock.advance(500);
    fs.files[`${V2}/cpu.stat`] = "usage_usec 700000\n";
    s.sample();
    assert.equal(s.capacityCores, 2);
    assert.equal(s.utilisation, 0.3);
    fs.files[`${V2}/cpu.max`] = "max 100000";
    clock.advance(500);
    s.sample();
    assert.equal(s.source, "host");
    assert.equal(s.capacityCores, 8);
    assert.equal(s.utilisation, 0, "the idle host's figure at once");
  });
});

describe("cpu sampler: cgroup v1", () => {
  it("reads the CFS quota and cpuacct.usage (ns) where Docker mounts them", () => {
    const fs = fakeFs({
      // Without a cgroup namespace the path is the host's; the container's cgroup is the mount root.
      "/proc/self/cgroup": "12:cpu,cpuacct:/docker/0123abcd\n11:memory:/docker/0123abcd\n",
      [`${V2}/cpu/cpu.cfs_quota_us`]: "150000\n",
      [`${V2}/cpu/cpu.cfs_period_us`]: "100000\n",
      [`${V2}/cpuacct/cpuacct.usage`]: "2000000000\n",
    });
    const { s, clock } = sampler(fs);
    assert.equal(s.source, "cgroup-v1");
    assert.equal(s.capacityCores, 1.5);
    clock.advance(2000);
    fs.files[`${V2}/cpuacct/cpuacct.usage`] = "3500000000\n";
    s.sample();
    assert.equal(s.utilisation, 0.5, "1.5 s of CPU in 2 s of 1.5 cores");
  });

  it("reads a combined cpu,cpuacct mount", () => {
    const dir = `${V2}/cpu,cpuacct`;
    const fs = fakeFs({
      [`${dir}/cpu.cfs_quota_us`]: "50000",
      [`${dir}/cpu.cfs_period_us`]: "100000",
      [`${dir}/cpuacct.usage`]: "0",
    });
    const { s, clock } = sampler(fs);
    assert.equal(s.source, "cgroup-v1");
    clock.advance(1000);
    fs.files[`${dir}/cpuacct.usage`] = "100000000";
    s.sample();
    assert.equal(s.utilisation, 0.2);
  });

  it("no quota (-1) or garbage: the host figure", () => {
    for (const [quota, usage] of [
      ["-1", "5"],
      ["abc", "5"],
      ["50000", "lots"],
    ] as const) {
      const fs = fakeFs({
        [`${V2}/cpu/cpu.cfs_quota_us`]: quota,
        [`${V2}/cpu/cpu.cfs_period_us`]: "100000",
        [`${V2}/cpuacct/cpuacct.usage`]: usage,
      });
      const { s, clock } = sampler(fs);
      clock.advance(500);
      s.sample();
      assert.equal(s.source, "host", `${quota} / ${usage}`);
      assert.equal(s.capacityCores, 8);
    }
  });
});
