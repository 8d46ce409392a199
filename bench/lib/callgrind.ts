/**
 * Counting a process's instructions with valgrind's callgrind: the command line that starts a
 * process under callgrind, zeroing and dumping its counters from outside (`callgrind_control`), and
 * reading a dump: the total over all threads and the main thread's share.
 *
 * Why the main thread separately: a Node process's other threads (V8's GC helpers and concurrent
 * compiler, the libuv pool) vary by ±10 % from run to run, the main thread by ~±1.5 %. Everything
 * the main thread runs sits below glibc's `__libc_start_call_main`, which valgrind names
 * `(below main)`; threads start in `clone`/`start_thread` instead. So the main thread's cost is the
 * inclusive cost of `(below main)` — what `callgrind_annotate` prints on that line, read here
 * without the Perl script.
 */
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sleep } from "./proc.js";

export interface CallgrindCost {
  /** Instructions executed by all threads (the dump's `summary:`, or `totals:`). */
  readonly all: number;
  /** Instructions executed by the main thread: the inclusive cost of `(below main)`. */
  readonly main: number;
}

/** The valgrind arguments before the command; dumps go to `<dir>/cg.out.<pid>[.<n>]`. */
export function callgrindArgs(dir: string): string[] {
  // all-non-file: V8 writes and rewrites machine code in anonymous memory; without it valgrind
  // would run stale translations of JIT code.
  return ["--tool=callgrind", "--smc-check=all-non-file", `--callgrind-out-file=${join(dir, "cg.out.%p")}`];
}

/** The file the n-th dump (1-based, counting `callgrind_control -d` calls) of `pid` is written to. */
export function dumpFile(dir: string, pid: number, n: number): string {
  return join(dir, `cg.out.${pid}.${n}`);
}

/** e.g. "3.19.0", or undefined when valgrind is not installed. */
export function valgrindVersion(): string | undefined {
  const r = spawnSync("valgrind", ["--version"], { stdio: ["ignore", "pipe", "ignore"] });
  if (r.status !== 0) return undefined;
  return /valgrind-(\S+)/.exec(r.stdout.toString())?.[1] ?? "unknown";
}

/**
 * Zeroes (`-z`) or dumps (`-d`) the counters of a process running under callgrind. callgrind_control
 * reaches it through vgdb, which waits for the reply, so the command has taken effect when this
 * resolves. It exits 0 even when it failed, hence the look at its output.
 */
export function callgrindControl(flag: "-z" | "-d", pid: number, timeoutMs = 60_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("callgrind_control", [flag, String(pid)], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const text = `${stdout}${stderr}`;
      if (err) reject(new Error(`callgrind_control ${flag} ${pid}: ${err.message}\n${text}`));
      else if (/^Error/m.test(text)) reject(new Error(`callgrind_control ${flag} ${pid}: ${text.trim()}`));
      else resolve();
    });
  });
}

/**
 * Waits (bounded) for a dump to be complete — callgrind writes `totals:` last — and returns its text.
 */
export async function readDump(file: string, timeoutMs = 30_000): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let text = "";
  while (performance.now() < deadline) {
    if (existsSync(file)) {
      text = readFileSync(file, "utf8");
      if (/^totals:/m.test(text)) return text;
    }
    await sleep(200);
  }
  if (/^summary:/m.test(text)) return text;
  throw new Error(`callgrind dump ${file} was not written within ${timeoutMs} ms`);
}

/**
 * The PID a dump says it was taken from (its `pid:` header line), or undefined when it has none: a
 * check that the counts belong to the process the requests went to, not to a forked child.
 */
export function dumpPid(text: string): number | undefined {
  const m = /^pid:\s*(\d+)/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Reads a callgrind dump (format: valgrind's docs/callgrind-format) into all-thread and main-thread cost. */
export function parseCallgrindDump(text: string): CallgrindCost {
  const names = new Map<string, string>();
  // Name compression: "fn=(12) name" defines id 12, a later "fn=(12)" (or "cfn=(12)") refers to it.
  const resolve = (spec: string): { key: string; name: string } => {
    const m = /^\((\d+)\)(?: (.*))?$/.exec(spec);
    if (!m) return { key: spec, name: spec };
    const id = m[1]!;
    if (m[2] !== undefined) names.set(id, m[2]);
    return { key: `(${id})`, name: names.get(id) ?? spec };
  };
  let positions = 1;
  let irColumn = 0;
  let summary: number | undefined;
  let totals: number | undefined;
  let fn = { key: "", name: "" };
  let callee = { key: "", name: "" };
  let afterCalls = false;
  // Inclusive cost of every function named "(below main)", by function key.
  const belowMain = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const c = line.charCodeAt(0);
    const isCost = (c >= 48 && c <= 57) || c === 43 /* + */ || c === 45 /* - */ || c === 42; /* * */
    if (isCost) {
      // A cost line right after "calls=" is the inclusive cost of those calls; otherwise it is
      // self cost. Both count towards the caller's inclusive cost, except a call to itself.
      const isCall = afterCalls;
      afterCalls = false;
      if (fn.name !== "(below main)" || (isCall && callee.key === fn.key)) continue;
      const ir = Number(line.split(" ")[positions + irColumn] ?? 0);
      belowMain.set(fn.key, (belowMain.get(fn.key) ?? 0) + ir);
    } else if (line.startsWith("fn=")) fn = resolve(line.slice(3));
    else if (line.startsWith("cfn=")) callee = resolve(line.slice(4));
    else if (line.startsWith("calls=")) afterCalls = true;
    else if (line.startsWith("summary:")) summary = Number(line.slice(8).trim().split(/\s+/)[irColumn]);
    else if (line.startsWith("totals:")) totals = Number(line.slice(7).trim().split(/\s+/)[irColumn]);
    else if (line.startsWith("positions:")) positions = line.slice(10).trim().split(/\s+/).length;
    else if (line.startsWith("events:"))
      irColumn = Math.max(0, line.slice(7).trim().split(/\s+/).indexOf("Ir"));
  }
  const all = summary ?? totals;
  if (all === undefined || !Number.isFinite(all)) throw new Error("callgrind dump without summary/totals");
  // glibc ≥ 2.34 has two: `_start`'s caller and `__libc_start_call_main`, one inside the other with
  // the same inclusive cost; the outermost (largest) is the main thread.
  if (belowMain.size === 0) throw new Error("callgrind dump without a (below main) function");
  return { all, main: Math.max(...belowMain.values()) };
}
