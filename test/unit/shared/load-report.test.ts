import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MAX_IN_FLIGHT_BUCKETS, validateLoadReport } from "../../../src/shared/load-report.js";

const base = {
  version: 1,
  epoch: "e1",
  seq: 3,
  uptimeSeconds: 12.5,
  state: "serving",
  appReachable: true,
  dataUrl: "http://10.0.0.1:8080",
  totals: { taskSeconds: 1.5, topLevelCalls: 10, nestedCalls: 2, errors: 0 },
  live: { inFlight: 1, inFlightTopLevel: 1, inFlightAgeSeconds: 0.01, cpu: 0.2, cores: 2 },
};
const withProfile = (byInFlight: unknown): unknown => ({ ...base, totals: { ...base.totals, byInFlight } });

describe("load report: optional totals.byInFlight", () => {
  it("accepts reports without it (sidecars from before it existed)", () => {
    assert.ok("report" in validateLoadReport(base));
  });

  it("accepts a well-formed profile", () => {
    const v = validateLoadReport(withProfile({ calls: [4, 5, 1], taskSeconds: [0.4, 0.6, 0.5] }));
    assert.ok("report" in v);
    assert.deepEqual(v.report.totals.byInFlight?.calls, [4, 5, 1]);
  });

  it("rejects a malformed profile", () => {
    const bad: unknown[] = [
      null,
      { calls: [1, 2], taskSeconds: [0.1] },
      { calls: [], taskSeconds: [] },
      { calls: [1, -1], taskSeconds: [0.1, 0.1] },
      { calls: [1, "2"], taskSeconds: [0.1, 0.1] },
      { calls: [Number.NaN], taskSeconds: [0.1] },
      { calls: 3, taskSeconds: [0.1] },
      {
        calls: new Array<number>(MAX_IN_FLIGHT_BUCKETS + 1).fill(1),
        taskSeconds: new Array<number>(MAX_IN_FLIGHT_BUCKETS + 1).fill(1),
      },
    ];
    for (const p of bad) {
      const v = validateLoadReport(withProfile(p));
      assert.ok("error" in v, JSON.stringify(p));
      assert.equal(v.error, "bad totals.byInFlight");
    }
  });
});

describe("load report: optional live.cpuSource and live.cpuCores", () => {
  const withLive = (extra: Record<string, unknown>): unknown => ({
    ...base,
    live: { ...base.live, ...extra },
  });

  it("accepts reports without them, with them, and with a source this router does not know yet", () => {
    for (const extra of [
      {},
      { cpuSource: "host", cpuCores: 2 },
      { cpuSource: "cgroup-v2", cpuCores: 0.5 },
      { cpuSource: "cgroup-v1", cpuCores: 1.5 },
      { cpuSource: "cgroup-v3" },
    ]) {
      const v = validateLoadReport(withLive(extra));
      assert.ok("report" in v, JSON.stringify(extra));
    }
  });

  it("rejects malformed ones", () => {
    for (const [extra, error] of [
      [{ cpuSource: 2 }, "bad live.cpuSource"],
      [{ cpuSource: "" }, "bad live.cpuSource"],
      [{ cpuSource: "<script>" }, "bad live.cpuSource"],
      [{ cpuSource: "x".repeat(33) }, "bad live.cpuSource"],
      [{ cpuCores: 0 }, "bad live.cpuCores"],
      [{ cpuCores: -1 }, "bad live.cpuCores"],
      [{ cpuCores: "2" }, "bad live.cpuCores"],
      [{ cpuCores: Number.POSITIVE_INFINITY }, "bad live.cpuCores"],
    ] as const) {
      const v = validateLoadReport(withLive(extra));
      assert.ok("error" in v, JSON.stringify(extra));
      assert.equal(v.error, error);
    }
  });
});
