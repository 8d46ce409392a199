import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../../src/shared/clock.js";
import { CausalityTable } from "../../../src/sidecar/causality.js";

const A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

function table(maxTrackedCalls = 100, callMaxAgeMs = 60_000) {
  const clock = new FakeClock(1_000);
  return { clock, t: new CausalityTable({ clock, maxTrackedCalls, callMaxAgeMs }) };
}

describe("causality: the nesting rule", () => {
  it("a lone call is top-level and timed", () => {
    const { clock, t } = table();
    const c = t.start(A);
    clock.advance(250);
    assert.deepEqual(t.end(c), { topLevel: true, durationMs: 250 });
    assert.equal(t.inFlight, 0);
  });

  it("a call that ends inside an earlier call with the same ID is nested; the enclosing one is top-level", () => {
    const { clock, t } = table();
    const outer = t.start(A);
    clock.advance(10);
    const inner = t.start(A);
    clock.advance(30);
    assert.deepEqual(t.end(inner), { topLevel: false, durationMs: 30 });
    clock.advance(5);
    assert.deepEqual(t.end(outer), { topLevel: true, durationMs: 45 });
  });

  it("deep nesting: every call inside the outermost one is nested", () => {
    const { clock, t } = table();
    const calls = [t.start(A)];
    for (let i = 0; i < 4; i++) {
      clock.advance(1);
      calls.push(t.start(A));
    }
    for (let i = calls.length - 1; i > 0; i--) assert.equal(t.end(calls[i]!)?.topLevel, false);
    assert.equal(t.end(calls[0]!)?.topLevel, true);
  });

  it("sequential siblings with the same ID and no enclosing call are each top-level", () => {
    const { clock, t } = table();
    const s1 = t.start(A);
    clock.advance(20);
    assert.equal(t.end(s1)?.topLevel, true);
    const s2 = t.start(A);
    clock.advance(20);
    assert.equal(t.end(s2)?.topLevel, true);
  });

  it("overlapping siblings where the earlier ends first are both top-level", () => {
    const { clock, t } = table();
    const s1 = t.start(A);
    clock.advance(10);
    const s2 = t.start(A);
    clock.advance(10);
    assert.deepEqual(t.end(s1), { topLevel: true, durationMs: 20 });
    clock.advance(10);
    assert.deepEqual(t.end(s2), { topLevel: true, durationMs: 20 });
  });

  it("calls that start at the same instant are ordered by arrival", () => {
    const { t } = table();
    const first = t.start(A);
    const second = t.start(A);
    assert.equal(t.end(second)?.topLevel, false);
    assert.equal(t.end(first)?.topLevel, true);
  });

  it("interleaved IDs do not affect each other", () => {
    const { clock, t } = table();
    const a1 = t.start(A);
    clock.advance(1);
    const b1 = t.start(B);
    clock.advance(1);
    const a2 = t.start(A);
    clock.advance(1);
    const b2 = t.start(B);
    clock.advance(1);
    assert.equal(t.end(b1)?.topLevel, true, "b1 is the oldest B");
    assert.equal(t.end(a2)?.topLevel, false, "a1 still encloses a2");
    assert.equal(t.end(b2)?.topLevel, true, "b1 already ended");
    assert.equal(t.end(a1)?.topLevel, true);
  });

  it("out-of-order completion: after the enclosing call ends, a later inner call is top-level", () => {
    const { clock, t } = table();
    const outer = t.start(A);
    clock.advance(5);
    const i1 = t.start(A);
    clock.advance(5);
    const i2 = t.start(A);
    clock.advance(5);
    assert.equal(t.end(outer)?.topLevel, true);
    // i1 is now the oldest in flight: it encloses i2 (which ends first) and is itself top-level.
    assert.equal(t.end(i2)?.topLevel, false);
    assert.deepEqual(t.end(i1), { topLevel: true, durationMs: 10 });
  });

  it("an aborted call ends like any other: timed once, and never twice", () => {
    const { clock, t } = table();
    const c = t.start(A);
    clock.advance(7);
    assert.deepEqual(t.end(c), { topLevel: true, durationMs: 7 });
    clock.advance(7);
    assert.equal(t.end(c), undefined, "a second end (abort after completion) changes nothing");
    assert.equal(t.inFlight, 0);
    assert.equal(t.inFlightTopLevel, 0);
  });

  it("live figures: top-level calls in flight and their summed age", () => {
    const { clock, t } = table();
    const outer = t.start(A);
    clock.advance(100);
    const inner = t.start(A);
    const other = t.start(B);
    clock.advance(50);
    assert.equal(t.inFlight, 3);
    assert.equal(t.inFlightTopLevel, 2);
    assert.equal(t.inFlightTopLevelAgeMs(), 150 + 50);
    t.end(outer);
    // inner has no enclosing call any more: it becomes top-level with its own age.
    assert.equal(t.inFlightTopLevel, 2);
    assert.equal(t.inFlightTopLevelAgeMs(), 50 + 50);
    t.end(inner);
    t.end(other);
    assert.equal(t.inFlightTopLevel, 0);
    assert.equal(t.inFlightTopLevelAgeMs(), 0);
  });

  it("table overflow: many distinct IDs are bounded; forgotten calls still end once, as top-level", () => {
    const { clock, t } = table(10);
    const outer = t.start(A);
    clock.advance(1);
    const inner = t.start(A);
    const flood = [];
    for (let i = 0; i < 1_000; i++) flood.push(t.start(i.toString(16).padStart(32, "0")));
    assert.ok(t.stats.trackedCalls <= 10, `tracked ${t.stats.trackedCalls}`);
    assert.ok(t.stats.ids <= 10);
    assert.equal(t.inFlight, 1_002);
    clock.advance(10);
    // A was forgotten: its nesting is unknown now, so both count (over-counting is the safe side).
    assert.deepEqual(t.end(inner), { topLevel: true, durationMs: 10 });
    assert.deepEqual(t.end(outer), { topLevel: true, durationMs: 11 });
    assert.equal(t.end(outer), undefined);
    for (const c of flood) assert.equal(t.end(c)?.topLevel, true);
    assert.equal(t.inFlight, 0);
    assert.equal(t.inFlightTopLevel, 0);
    assert.equal(t.inFlightTopLevelAgeMs(), 0);
    assert.equal(t.stats.trackedCalls, 0);
  });

  it("table overflow: many calls under one ID are bounded too", () => {
    const { t } = table(50);
    const calls = [];
    for (let i = 0; i < 5_000; i++) calls.push(t.start(A));
    assert.ok(t.stats.trackedCalls <= 50, `tracked ${t.stats.trackedCalls}`);
    let top = 0;
    let nested = 0;
    for (const c of calls.reverse()) {
      const r = t.end(c);
      assert.ok(r);
      if (r.topLevel) top++;
      else nested++;
    }
    assert.equal(top + nested, 5_000, "every call ended exactly once");
    assert.ok(nested < 50);
    assert.equal(t.stats.trackedCalls, 0);
    assert.equal(t.inFlightTopLevel, 0);
  });

  it("an ID leaves the table after callMaxAgeMs; its calls end as top-level and new calls start afresh", () => {
    const { clock, t } = table(100, 1_000);
    const outer = t.start(A);
    clock.advance(500);
    const inner = t.start(A);
    clock.advance(600);
    // The next lookup of A finds it too old and forgets it.
    const late = t.start(A);
    assert.equal(t.stats.detachedCalls, 2);
    clock.advance(1);
    assert.equal(t.end(inner)?.topLevel, true);
    assert.equal(t.end(late)?.topLevel, true);
    assert.deepEqual(t.end(outer), { topLevel: true, durationMs: 1_101 });
    assert.equal(t.inFlightTopLevel, 0);
  });

  it("a long random run keeps the books balanced", () => {
    const { clock, t } = table(64, 5_000);
    const ids = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(32, "a"));
    const open: ReturnType<typeof t.start>[] = [];
    let seed = 42;
    const rnd = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    let ended = 0;
    for (let i = 0; i < 20_000; i++) {
      clock.advance(rnd() * 3);
      if (open.length === 0 || rnd() < 0.55) open.push(t.start(ids[Math.floor(rnd() * ids.length)]!));
      else {
        const [c] = open.splice(Math.floor(rnd() * open.length), 1);
        assert.ok(t.end(c!));
        ended++;
      }
      assert.ok(t.inFlightTopLevel <= t.inFlight);
      assert.ok(t.inFlightTopLevelAgeMs() >= 0);
    }
    for (const c of open) {
      assert.ok(t.end(c));
      ended++;
    }
    assert.equal(t.inFlight, 0);
    assert.equal(t.inFlightTopLevel, 0);
    assert.equal(t.stats.trackedCalls, 0);
    assert.ok(ended > 0);
  });

  it("regression (lru-cache idle clear): nothing in the table is sized by maxTrackedCalls, so a lone call stays O(1)", () => {
    // lru-cache preallocated arrays of size max and refilled them all whenever its last entry was
    // deleted: with one call in flight at a time, every call paid O(maxTrackedCalls). A table that
    // allocates nothing in proportion to max cannot do that; with lru-cache this asserts ~240 MB.
    const max = 10_000_000;
    const before = process.memoryUsage().arrayBuffers;
    const { clock, t } = table(max);
    const grown = process.memoryUsage().arrayBuffers - before;
    assert.ok(grown < 8 * 2 ** 20, `constructing the table took ${grown} bytes of array buffers`);
    for (let i = 0; i < 2_000; i++) {
      const c = t.start(i.toString(16).padStart(32, "c"));
      clock.advance(1);
      assert.deepEqual(t.end(c), { topLevel: true, durationMs: 1 });
      assert.deepEqual(t.stats, { ids: 0, trackedCalls: 0, detachedCalls: 0 });
    }
    const after = process.memoryUsage().arrayBuffers - before;
    assert.ok(after < 8 * 2 ** 20, `2,000 calls left ${after} bytes of array buffers`);
  });

  it("a full table forgets the least recently joined ID, not merely the oldest one", () => {
    const { t } = table(3);
    const a = t.start(A);
    const b = t.start(B);
    const a2 = t.start(A); // A joined again: B is now the least recently used
    const c = t.start("cccccccccccccccccccccccccccccccc"); // full (3 tracked): B is forgotten
    assert.equal(t.stats.detachedCalls, 1);
    assert.equal(t.end(a2)?.topLevel, false, "A is still tracked, so a2 is nested in a");
    assert.equal(t.end(b)?.topLevel, true);
    assert.equal(t.end(a)?.topLevel, true);
    assert.equal(t.end(c)?.topLevel, true);
    assert.deepEqual(t.stats, { ids: 0, trackedCalls: 0, detachedCalls: 1 });
  });
});
