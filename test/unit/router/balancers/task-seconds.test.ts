import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createTaskSecondsBalancer,
  TASK_SECONDS_GAIN,
} from "../../../../src/router/balancers/task-seconds.js";
import { deps, load, view } from "./fixtures.js";

void test("task-seconds applies 1/4 of each difference to its EWMA", () => {
  const b = createTaskSecondsBalancer(deps());
  const s = view("a");
  assert.equal(TASK_SECONDS_GAIN, 0.25);
  b.onReport!("a", load({ busy: 2 }), 0);
  assert.equal(b.score!(s, 0), 2);
  b.onReport!("a", load({ busy: 6 }), 100);
  assert.equal(b.score!(s, 100), 3); // 2 + (6 − 2) / 4
  b.onReport!("a", load({ busy: 3 }), 200);
  assert.equal(b.score!(s, 200), 3); // 3 + (3 − 3) / 4
  b.onReport!("a", load({ busy: 0 }), 300);
  assert.equal(b.score!(s, 300), 2.25);
});

void test("task-seconds sends ALL new work to the lowest figure until another is better", () => {
  const b = createTaskSecondsBalancer(deps());
  const servers = ["a", "b", "c"].map((id) => view(id, { inFlight: id === "b" ? 50 : 0 }));
  b.onReport!("a", load({ busy: 3 }), 0);
  b.onReport!("b", load({ busy: 1 }), 0);
  b.onReport!("c", load({ busy: 2 }), 0);
  // The router's own in-flight count does not matter: every pick goes to b.
  for (let i = 0; i < 100; i++) assert.equal(b.pick(servers, i).id, "b");
  // b's next reading is high: 1 + (9 − 1)/4 = 3 > c's 2, so all work moves to c.
  b.onReport!("b", load({ busy: 9 }), 100);
  for (let i = 0; i < 100; i++) assert.equal(b.pick(servers, 100 + i).id, "c");
});

void test("task-seconds breaks ties stably (lowest id) and treats a server without figures as idle", () => {
  const b = createTaskSecondsBalancer(deps());
  const servers = ["c", "b", "a"].map((id) => view(id));
  assert.equal(b.pick(servers, 0).id, "a");
  b.onReport!("a", load({ busy: 0.5 }), 0);
  assert.equal(b.pick(servers, 0).id, "b");
  b.onRemove!("a");
  assert.equal(b.pick(servers, 0).id, "a");
});
