import { test } from "node:test";
import assert from "node:assert/strict";
import { createCpuBalancer } from "../../../../src/router/balancers/cpu.js";
import { deps, load, view } from "./fixtures.js";

void test("cpu picks the server with the lowest reported CPU, every time", () => {
  const b = createCpuBalancer(deps());
  const servers = [
    view("a", { reported: load({ cpu: 0.7 }) }),
    view("b", { reported: load({ cpu: 0.2 }), inFlight: 30 }),
    view("c", { reported: load({ cpu: 0.4 }) }),
  ];
  for (let i = 0; i < 50; i++) assert.equal(b.pick(servers, i).id, "b");
  assert.equal(b.score!(servers[0]!, 0), 0.7);
});

void test("cpu counts a server without a report as idle (tried at once), ties to the lowest id", () => {
  const b = createCpuBalancer(deps());
  const servers = [view("b", { reported: load({ cpu: 0.1 }) }), view("z"), view("y")];
  assert.equal(b.pick(servers, 0).id, "y");
  assert.equal(b.score!(servers[1]!, 0), undefined);
});
