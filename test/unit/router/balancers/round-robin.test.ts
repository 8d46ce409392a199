import { test } from "node:test";
import assert from "node:assert/strict";
import { createRoundRobinBalancer } from "../../../../src/router/balancers/round-robin.js";
import { deps, view } from "./fixtures.js";

void test("round-robin cycles through the candidates in order, exactly", () => {
  const b = createRoundRobinBalancer(deps());
  const servers = ["a", "b", "c"].map((id) => view(id, { inFlight: id === "a" ? 100 : 0 }));
  const picks = Array.from({ length: 9 }, () => b.pick(servers, 0).id);
  assert.deepEqual(picks, ["a", "b", "c", "a", "b", "c", "a", "b", "c"]);
});

void test("round-robin keeps cycling when a server leaves", () => {
  const b = createRoundRobinBalancer(deps());
  const three = ["a", "b", "c"].map((id) => view(id));
  assert.equal(b.pick(three, 0).id, "a");
  assert.equal(b.pick(three, 0).id, "b");
  const two = [three[0]!, three[2]!];
  const picks = Array.from({ length: 4 }, () => b.pick(two, 0).id);
  assert.deepEqual(picks.slice().sort(), ["a", "a", "c", "c"]);
});
