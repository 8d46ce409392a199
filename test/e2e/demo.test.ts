/**
 * The README's first command, shortened: `tasklb demo --duration-s 5` starts the whole cluster,
 * prints a line per second when stdout is not a terminal, ends with a summary and exits 0.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { CLI } from "../helpers/router.js";

void test("tasklb demo --duration-s 5 exits 0 and prints live lines and a summary", async (t) => {
  const proc = spawn(process.execPath, [CLI, "demo", "--duration-s", "5", "--rate", "60"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGKILL");
      await exited;
    }
  });
  let out = "";
  let err = "";
  proc.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
  proc.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const timeout = setTimeout(() => proc.kill("SIGKILL"), 55_000);
  const code = await exited;
  clearTimeout(timeout);
  assert.equal(code, 0, `demo failed:\n${out}\n${err}`);
  assert.match(out, /router admin: +http:\/\/127\.0\.0\.1:\d+\/v1\/servers/);
  assert.match(out, /^t=\d+s /m, "a live line per second");
  const summary = out.slice(out.indexOf("Summary:"));
  assert.match(summary, /^Summary: adaptive, /);
  for (const name of ["alpha", "bravo", "charlie", "delta", "all"]) {
    assert.match(summary, new RegExp(`^  ${name} +\\d+ +\\d+ +\\d+\\.\\d%`, "m"), name);
  }
  const all = /^ {2}all +(\d+) +(\d+)/m.exec(summary)!;
  assert.ok(Number(all[1]) > 100, "the load ran");
  assert.equal(Number(all[2]), 0, "no errors");
});
