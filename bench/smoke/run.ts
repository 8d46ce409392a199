/**
 * What the benches' smoke tests share: running one bench script of this build as a child process.
 * One file per bench family (the runner gives each file its own time budget; valgrind's alone takes
 * about 1.5 minutes). They check that the benches work, never their timings. `npm test` runs them
 * (CI installs wrk, nginx, HAProxy and valgrind); alone: `npm run bench:smoke`.
 */
import { fileURLToPath } from "node:url";
import { runNodeScript } from "../lib/proc.js";

/** The build (dist/ or a .build/<name>/ directory) these smoke tests were compiled into. */
export const thisBuild = fileURLToPath(new URL("../..", import.meta.url));

/** Runs `script` (a path under bench/, e.g. "overhead/main.js") with `args`; killed after `timeoutMs`. */
export function runBench(
  script: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNodeScript(fileURLToPath(new URL(`../${script}`, import.meta.url)), args, timeoutMs);
}
