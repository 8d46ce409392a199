/**
 * Large bodies stream through the sidecar in both directions without being buffered: the real
 * sidecar process's peak memory stays flat while hundreds of MiB pass.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { startTestApp } from "../helpers/app.js";
import { spawnSidecar, waitFor, send } from "../helpers/sidecar.js";

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;
const MAX_GROWTH = 100 * MiB;

/** Resident and peak resident memory of a process (Linux /proc). */
function memory(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)![1]) * 1024;
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

function upload(url: string, total: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: "POST", agent: false, headers: { "content-type": "application/octet-stream" } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on("error", reject);
    const chunk = Buffer.alloc(256 * 1024, "u");
    let left = total;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        // Chunked encoding: the sidecar cannot know the size in advance either.
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
          return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

function download(url: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => (bytes += c.length));
      res.on("end", () => resolve({ status: res.statusCode!, bytes }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("sidecar streaming", { timeout: 180_000 }, () => {
  it("256 MiB up and 256 MiB down pass with the sidecar's memory bounded", async (t) => {
    const app = await startTestApp();
    t.after(() => app.close());
    const sc = await spawnSidecar(t, [
      "--app",
      app.url,
      "--listen",
      "127.0.0.1:0",
      "--control",
      "127.0.0.1:0",
    ]);
    await waitFor("ready", async () => (await send(sc.controlUrl, { path: "/readyz" })).status === 200);
    // Warm up so the baseline includes the code paths' own memory.
    await download(`${sc.url}/download?bytes=${4 * MiB}`);
    await upload(`${sc.url}/upload`, 4 * MiB);
    const before = memory(sc.pid);

    const up = await upload(`${sc.url}/upload`, TOTAL);
    assert.equal(up.status, 200);
    assert.deepEqual(JSON.parse(up.body), { bytes: TOTAL });
    const down = await download(`${sc.url}/download?bytes=${TOTAL}`);
    assert.deepEqual(down, { status: 200, bytes: TOTAL });

    const after = memory(sc.pid);
    const growth = after.peak - before.rss;
    t.diagnostic(
      `sidecar rss before ${(before.rss / MiB).toFixed(1)} MiB, peak after ${(after.peak / MiB).toFixed(1)} MiB`,
    );
    assert.ok(
      growth < MAX_GROWTH,
      `peak memory grew by ${(growth / MiB).toFixed(1)} MiB while 512 MiB passed`,
    );
  });
});
