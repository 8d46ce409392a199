import { test } from "node:test";
import assert from "node:assert/strict";
import { BALANCER_NAMES, createBalancer, DEFAULT_BALANCER } from "../../../../src/router/balancers/index.js";
import { deps, view } from "./fixtures.js";

void test("the registry lists every algorithm and creates each by name", () => {
  assert.deepEqual(
    [...BALANCER_NAMES],
    ["random", "round-robin", "task-seconds", "cpu", "least-request", "adaptive"],
  );
  assert.equal(DEFAULT_BALANCER, "adaptive");
  for (const name of BALANCER_NAMES) {
    const b = createBalancer(name, deps());
    assert.equal(b.name, name);
    assert.equal(b.pick([view("a"), view("b")], 0).id.length, 1);
  }
});

void test("an unknown algorithm name throws an error naming the known ones", () => {
  assert.throws(() => createBalancer("fastest", deps()), /unknown balancing algorithm "fastest".*adaptive/);
  assert.throws(() => createBalancer("toString", deps()), /unknown balancing algorithm/);
});
