import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { envName } from "../../../src/shared/config.js";
import { SIDECAR_OPTIONS } from "../../../src/sidecar/config.js";

/** The repository root: the first ancestor of this compiled file holding docs/sidecar.md. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "docs", "sidecar.md"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("docs/sidecar.md not found above " + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

function defaultText(v: unknown): string | undefined {
  if (v === undefined || (Array.isArray(v) && v.length === 0)) return undefined;
  if (typeof v === "object" && v !== null) {
    const hp = v as { host: string; port: number };
    return `\`${hp.host}:${hp.port}\``;
  }
  return `\`${typeof v === "string" ? v : JSON.stringify(v)}\``;
}

for (const file of ["docs/sidecar.md", "README.md"]) {
  describe(file, () => {
    it("lists every sidecar flag with its environment variable and default", () => {
      const doc = readFileSync(join(repoRoot(), file), "utf8");
      for (const s of SIDECAR_OPTIONS) {
        const row = doc.split("\n").find((l) => l.startsWith(`| \`--${s.flag} `));
        assert.ok(row, `${file}: no table row for --${s.flag}`);
        assert.ok(row.includes(`\`${envName(s)}\``), `${file}: row for --${s.flag} lacks ${envName(s)}`);
        const def = defaultText(s.default);
        if (def !== undefined)
          assert.ok(row.includes(def), `${file}: row for --${s.flag} lacks its default ${def}`);
      }
    });
  });
}
