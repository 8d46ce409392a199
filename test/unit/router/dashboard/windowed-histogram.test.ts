import assert from "node:assert/strict";
import { test } from "node:test";
import { WindowedHistogram } from "../../../../src/router/dashboard/windowed-histogram.js";

const near = (actual: number | undefined, expected: number, rel = 0.05) => {
  assert.ok(actual !== undefined, "expected a value");
  assert.ok(
    Math.abs(actual - expected) <= expected * rel,
    `${actual} is not within ${rel * 100}% of ${expected}`,
  );
};

void test("percentiles of 1..1000 ms are within the bucket accuracy", () => {
  const h = new WindowedHistogram();
  for (let v = 1; v <= 1000; v++) h.record(v, 500);
  near(h.percentile(0.5, 500), 500);
  near(h.percentile(0.99, 500), 990);
  assert.equal(h.count(500), 1000);
});

void test("an empty window has no percentiles", () => {
  const h = new WindowedHistogram();
  assert.deepEqual(h.percentiles([0.5, 0.99], 0), [undefined, undefined]);
});

void test("values leave the window as time moves on, so a slow spell stops showing", () => {
  const h = new WindowedHistogram({ windowMs: 10_000, slices: 10 });
  for (let i = 0; i < 100; i++) h.record(800, 1000);
  near(h.percentile(0.5, 1000), 800);
  for (let i = 0; i < 100; i++) h.record(20, 6000);
  // Half slow, half fast: p99 still sees the slow ones.
  near(h.percentile(0.99, 6000), 800);
  // Eleven seconds after the slow spell it is gone; the fast ones remain.
  near(h.percentile(0.99, 12_500), 20);
  assert.equal(h.count(12_500), 100);
  assert.equal(h.count(30_000), 0);
});

void test("a slot reused after a full turn of the ring starts empty", () => {
  const h = new WindowedHistogram({ windowMs: 1000, slices: 4 });
  h.record(100, 0);
  h.record(5, 1000);
  assert.equal(h.count(1000), 1);
  near(h.percentile(0.5, 1000), 5);
});

void test("values beyond the range are clamped, not lost; bad values are ignored", () => {
  const h = new WindowedHistogram({ maxMs: 1000 });
  h.record(1e9, 0);
  h.record(0, 0);
  h.record(Number.NaN, 0);
  h.record(-1, 0);
  assert.equal(h.count(0), 2);
  assert.ok((h.percentile(1, 0) ?? 0) >= 1000);
});
