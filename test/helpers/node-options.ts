/**
 * What a NODE_OPTIONS value does to V8's young generation, checked by running Node with it: the
 * deploy manifests give the sidecar `--max-semi-space-size` (memory per app pod) and leave the
 * router on V8's default (throughput), and a flag Node refuses in NODE_OPTIONS would stop the
 * container from starting at all.
 */
import { spawnSync } from "node:child_process";
import assert from "node:assert/strict";

/** The semi-space cap (MiB) a NODE_OPTIONS value sets, or undefined when it sets none. */
export function semiSpaceMiB(nodeOptions: string | undefined): number | undefined {
  const m = /--max-semi-space-size=(\d+)/.exec(nodeOptions ?? "");
  return m ? Number(m[1]) : undefined;
}

/**
 * Runs Node with `nodeOptions`, allocates well past the cap and asserts that Node accepted the
 * value (it exits 9 on a flag not allowed there) and that the young generation stayed within three
 * semi-spaces of the cap (V8 reads the flag at start only; setting it later does nothing).
 */
export function assertYoungGenerationCapped(nodeOptions: string, where: string): void {
  const semi = semiSpaceMiB(nodeOptions);
  assert.ok(semi !== undefined, `${where}: NODE_OPTIONS sets --max-semi-space-size: ${nodeOptions}`);
  const script =
    "let k=[];for(let i=0;i<2e6;i++){k.push({i});if(k.length>5e4)k=[]}" +
    "const s=require('v8').getHeapSpaceStatistics().find(x=>x.space_name==='new_space');" +
    "process.stdout.write(String(s.space_size))";
  const out = spawnSync(process.execPath, ["-e", script], {
    env: { PATH: process.env.PATH ?? "", NODE_OPTIONS: nodeOptions },
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(out.status, 0, `${where}: Node refused NODE_OPTIONS=${nodeOptions}: ${out.stderr}`);
  assert.ok(
    Number(out.stdout) <= 3 * semi * 2 ** 20,
    `${where}: new space ${out.stdout} bytes with a ${semi} MiB semi-space cap`,
  );
}
