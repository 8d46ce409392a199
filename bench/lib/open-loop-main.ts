/**
 * Runs the open-loop generator as its own process (so it can be pinned to its own core):
 * `node open-loop-main.js '<OpenLoopConfig JSON>'` prints one line `{"openLoopResult": …}`.
 */
import { runOpenLoop, type OpenLoopConfig } from "./open-loop.js";

const cfg = JSON.parse(process.argv[2] ?? "{}") as OpenLoopConfig;
runOpenLoop(cfg).then(
  (result) => {
    process.stdout.write(JSON.stringify({ openLoopResult: result }) + "\n");
  },
  (err: unknown) => {
    process.stderr.write(`open-loop: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
