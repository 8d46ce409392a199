import { test } from "node:test";
import assert from "node:assert/strict";
import { createRandomBalancer } from "../../../../src/router/balancers/random.js";
import { deps, tally, view } from "./fixtures.js";

void test("random spreads picks about uniformly over the candidates", () => {
  const b = createRandomBalancer(deps(1));
  const servers = ["a", "b", "c", "d"].map((id) => view(id));
  const counts = tally(8000, () => b.pick(servers, 0));
  assert.equal(counts.size, 4);
  for (const [, c] of counts) assert.ok(c > 1800 && c < 2200, `count ${c} far from 2000`);
});

void test("random is reproducible with the same seed", () => {
  const servers = ["a", "b", "c"].map((id) => view(id));
  const seq = (): string[] => {
    const b = createRandomBalancer(deps(7));
    return Array.from({ length: 50 }, () => b.pick(servers, 0).id);
  };
  assert.deepEqual(seq(), seq());
});
