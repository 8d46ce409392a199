import { test } from "node:test";
import assert from "node:assert/strict";
import { createLeastRequestBalancer } from "../../../../src/router/balancers/least-request.js";
import { deps, tally, view } from "./fixtures.js";

void test("least-request picks the less loaded of two servers", () => {
  const b = createLeastRequestBalancer(deps(3));
  const servers = [view("busy", { inFlight: 9 }), view("idle", { inFlight: 1 })];
  for (let i = 0; i < 50; i++) assert.equal(b.pick(servers, i).id, "idle");
});

void test("least-request never picks the most loaded of many, and spreads over the rest", () => {
  const b = createLeastRequestBalancer(deps(5));
  const servers = ["a", "b", "c", "d", "e"].map((id, i) => view(id, { inFlight: id === "e" ? 100 : i }));
  const counts = tally(5000, () => b.pick(servers, 0));
  assert.equal(counts.get("e"), undefined);
  // With two random choices, the least loaded wins most and every other one gets some work.
  assert.ok(
    counts.get("a")! > counts.get("b")! && counts.get("b")! > counts.get("c")! && counts.get("c")! > 0,
  );
});

void test("least-request with one candidate returns it", () => {
  const b = createLeastRequestBalancer(deps());
  const only = view("a", { inFlight: 3 });
  assert.equal(b.pick([only], 0), only);
});
