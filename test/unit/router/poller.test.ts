/** The poller against real control endpoints on loopback: good, unauthorised, hanging and garbage reports. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { monotonicClock } from "../../../src/shared/clock.js";
import type { LoadReport } from "../../../src/shared/load-report.js";
import { createPoller } from "../../../src/router/poller.js";
import { startNamedServer, startReportServer, waitFor } from "../../helpers/router.js";

void test("each server is polled on its own loop; failures say why", async (t) => {
  const good = await startReportServer(t);
  good.taskSeconds = 1.5;
  const locked = await startReportServer(t, { token: "right" });
  const hung = await startReportServer(t);
  hung.hang = true;
  const garbage = await startNamedServer(t, "not-a-report");
  const ok: Record<string, LoadReport[]> = {};
  const failed: Record<string, string[]> = {};
  const poller = createPoller(
    { pollIntervalMs: 50, pollTimeoutMs: 300, token: "wrong" },
    {
      clock: monotonicClock,
      onSuccess: (id, r) => (ok[id] ??= []).push(r),
      onFailure: (id, why) => (failed[id] ??= []).push(why),
    },
  );
  t.after(() => poller.close());
  const first = Promise.all([
    poller.add({ id: "good", controlUrl: good.url }),
    poller.add({ id: "locked", controlUrl: locked.url }),
    poller.add({ id: "hung", controlUrl: hung.url }),
    poller.add({ id: "garbage", controlUrl: garbage.url }),
  ]);
  await first;
  assert.equal(ok.good?.[0]?.totals.taskSeconds, 1.5);
  assert.match(failed.locked?.[0] ?? "", /^401/);
  assert.match(failed.hung?.[0] ?? "", /timed out after 300 ms/);
  assert.equal(failed.garbage?.[0], "report is not JSON");
  // The good server keeps its pace while the hanging one times out again and again.
  await waitFor(() => (failed.hung?.length ?? 0) >= 3, "three timeouts", 5000);
  assert.ok((ok.good?.length ?? 0) >= 10, `good server polled ${ok.good?.length} times`);
  const seqs = (ok.good ?? []).map((r) => r.seq);
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
  );

  poller.remove("good");
  const n = good.polls;
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(good.polls <= n + 1, "a removed server is no longer polled");
});
