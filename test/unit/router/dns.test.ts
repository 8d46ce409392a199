/** DNS membership: every address of a name joins, vanished ones leave, a failed lookup keeps the last good set. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createDnsWatcher, type LookupAll } from "../../../src/router/membership/dns.js";

void test("re-resolution adds and removes servers; failures keep the last good set", async () => {
  let answer: Awaited<ReturnType<LookupAll>> | Error = [
    { address: "10.0.0.1", family: 4 },
    { address: "10.0.0.2", family: 4 },
  ];
  const added: string[] = [];
  const removed: string[] = [];
  const w = createDnsWatcher(
    { targets: [{ name: "app.svc", port: 8080 }], intervalMs: 1000, sidecarControlPort: 9901 },
    {
      lookup: async () => {
        if (answer instanceof Error) throw answer;
        return answer;
      },
      onAdd: (a) => added.push(`${a.dataUrl}=${a.controlUrl}`),
      onRemove: (u) => removed.push(u),
    },
  );
  await w.resolveNow();
  assert.deepEqual(added, [
    "http://10.0.0.1:8080=http://10.0.0.1:9901",
    "http://10.0.0.2:8080=http://10.0.0.2:9901",
  ]);
  answer = Object.assign(new Error("boom"), { code: "EAI_AGAIN" });
  await w.resolveNow();
  assert.deepEqual(removed, [], "a failed lookup removes nothing");
  answer = [
    { address: "10.0.0.2", family: 4 },
    { address: "fd00::3", family: 6 },
  ];
  await w.resolveNow();
  assert.deepEqual(removed, ["http://10.0.0.1:8080"]);
  assert.equal(added.at(-1), "http://[fd00::3]:8080=http://[fd00::3]:9901");
  w.close();
});
