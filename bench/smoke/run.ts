/**
 * What the benches' smoke tests share: running one bench script of this build as a child process.
 * One file per bench family (the runner gives each file its own time budget; valgrind's alone takes
 * about 1.5 minutes). They check that the benches work, never their timings. `npm test` runs them
 * (CI installs wrk, nginx, HAProxy and valgrind); alone: `npm run bench:smoke`.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The build (dist/ or a .build/<name>/ directory) these smoke tests were compiled into. */
export const thisBuild = fileURLToPath(new URL("../..", import.meta.url));

/** Runs `script` (a path under bench/, e.g. "overhead/main.js") with `args`; killed after `timeoutMs`. */
export function runBench(
  script: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL(`../${script}`, import.meta.url)), ...args],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
