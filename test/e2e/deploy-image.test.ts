/**
 * The container image, checked offline (no Docker engine here): the Dockerfile lints clean with
 * dockerfile-utils, follows the rules in docs/deploy.md (multi-stage, production dependencies
 * only, non-root, tini as PID 1, HEALTHCHECK without curl), the build context is an allow-list,
 * the compiled code needs no dev dependency at run time, and the HEALTHCHECK command really
 * tells a live port from a dead one.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { builtinModules } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { validate, ValidationSeverity } from "dockerfile-utils";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "Dockerfile")) && existsSync(join(dir, "package.json"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("Dockerfile not found above " + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const ROOT = repoRoot();
const DOCKERFILE = readFileSync(join(ROOT, "Dockerfile"), "utf8");
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions (continuations joined, comments dropped) grouped by stage; ARGs before the first FROM in `globalArgs`. */
function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (current === "" && /^\s*#/.test(line)) continue;
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " ";
      continue;
    }
    current += line;
    if (current.trim() !== "") logical.push(current.trim());
    current = "";
  }
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\w+)\s*(.*)$/s.exec(line)!;
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!;
    if (keyword === "FROM") {
      const f = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: f[1]!, name: f[2], instructions: [] });
    } else if (stages.length === 0) {
      if (keyword === "ARG") {
        const [k, v] = args.split("=");
        globalArgs.set(k!, v ?? "");
      }
    } else {
      stages[stages.length - 1]!.instructions.push({ keyword, args });
    }
  }
  return { globalArgs, stages };
}

const { globalArgs, stages } = parseDockerfile(DOCKERFILE);
const runtime = stages[stages.length - 1]!;
const all = (s: Stage, kw: string) => s.instructions.filter((i) => i.keyword === kw);
const jsonForm = (i: Instruction | undefined): string[] => {
  assert.ok(i, "instruction present");
  const a = i.args.replace(/^(?:--\S+\s+)*(?:CMD\s+)?/i, "");
  return JSON.parse(a) as string[];
};

void test("the Dockerfile lints clean with dockerfile-utils (every check as an error)", () => {
  const strict = {
    deprecatedMaintainer: ValidationSeverity.ERROR,
    directiveCasing: ValidationSeverity.ERROR,
    emptyContinuationLine: ValidationSeverity.ERROR,
    instructionCasing: ValidationSeverity.ERROR,
    instructionCmdMultiple: ValidationSeverity.ERROR,
    instructionEntrypointMultiple: ValidationSeverity.ERROR,
    instructionHealthcheckMultiple: ValidationSeverity.ERROR,
    instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
    instructionWorkdirRelative: ValidationSeverity.ERROR,
  };
  const problems = validate(DOCKERFILE, strict).map(
    (d) => `line ${d.range.start.line + 1}: ${typeof d.message === "string" ? d.message : d.message.value}`,
  );
  assert.deepEqual(problems, []);
  // The linter is live: a broken file is reported.
  const broken = "FROM node:24-slim\nhealthcheck --intervall=1s CMD true\nCOPY\nWORKDIR rel\n";
  assert.equal(validate(broken, strict).length, 4);
});

void test("multi-stage: built with dev dependencies, run on a current Node LTS slim base", () => {
  assert.ok(stages.length >= 2, "a build stage and a runtime stage");
  const build = stages.find((s) => s.name === "build");
  assert.ok(build, "a stage named build");
  assert.ok(
    all(build, "RUN").some((r) => /npm ci\b/.test(r.args) && !/--omit=dev/.test(r.args)),
    "the build stage installs dev dependencies",
  );
  assert.ok(
    all(build, "RUN").some((r) => /npm run build|tsc -p/.test(r.args)),
    "the build stage compiles",
  );
  const version = globalArgs.get("NODE_VERSION");
  assert.ok(version === "22" || version === "24", `NODE_VERSION is an LTS line (got ${version})`);
  for (const s of stages)
    assert.match(
      s.from,
      /^node:\$\{NODE_VERSION\}-(\w+-)?slim$/,
      `stage ${s.name ?? "?"} is a slim Node image`,
    );
});

void test("the runtime stage holds production dependencies and dist/src only", () => {
  const runs = all(runtime, "RUN").map((r) => r.args);
  const npmCi = runs.filter((r) => /npm ci\b/.test(r));
  assert.equal(npmCi.length, 1, "one npm ci in the runtime stage");
  assert.match(npmCi[0]!, /--omit=dev/);
  // package.json's `prepare` runs tsc, which is not installed without dev dependencies.
  assert.match(npmCi[0]!, /--ignore-scripts/);
  const copies = all(runtime, "COPY").map((c) => c.args);
  const fromContext = copies.filter((c) => !/--from=/.test(c));
  const fromBuild = copies.filter((c) => /--from=/.test(c));
  assert.deepEqual(
    fromContext.flatMap((c) => c.split(/\s+/).slice(0, -1)).sort(),
    ["package-lock.json", "package.json"],
    "only the package manifests come from the build context",
  );
  assert.equal(fromBuild.length, 1);
  assert.match(
    fromBuild[0]!,
    /^--from=build \S*\/dist\/src \.\/dist\/src$/,
    "only the compiled dist/src comes from the build stage",
  );
  assert.ok(!copies.some((c) => /node_modules/.test(c)), "node_modules is never copied");
});

void test("runs as a non-root user with tini as PID 1 and the tasklb CLI as the command", () => {
  const users = all(runtime, "USER");
  assert.equal(users.length, 1);
  const user = users[0]!.args.split(":")[0]!;
  assert.ok(
    /^\d+$/.test(user) && Number(user) > 0,
    `a numeric non-root user, so runAsNonRoot can verify it (got ${user})`,
  );
  assert.ok(
    all(runtime, "RUN").some((r) => /apt-get install[^&]*\btini\b/.test(r.args)),
    "tini is installed",
  );
  const entrypoint = jsonForm(all(runtime, "ENTRYPOINT")[0]);
  assert.deepEqual(
    entrypoint.slice(0, 2),
    ["tini", "--"],
    "tini forwards SIGTERM to node and reaps children",
  );
  assert.deepEqual(entrypoint.slice(2), ["node", PKG.bin.tasklb], "then the package's own bin entry");
  assert.equal(jsonForm(all(runtime, "CMD")[0])[0], "--help", "no subcommand given prints the usage");
});

void test("the .dockerignore allow-list admits what the COPY instructions need and nothing heavy", () => {
  const lines = readFileSync(join(ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  assert.equal(lines[0], "*", "everything is excluded first");
  const allowed = lines.filter((l) => l.startsWith("!")).map((l) => l.slice(1).replace(/\/$/, ""));
  const needed = stages.flatMap((s) =>
    all(s, "COPY")
      .filter((c) => !/--from=/.test(c.args))
      .flatMap((c) => c.args.split(/\s+/).slice(0, -1)),
  );
  for (const n of needed) assert.ok(allowed.includes(n.replace(/\/$/, "")), `${n} is in the build context`);
  for (const heavy of ["node_modules", "dist", ".build", ".git", "test", "bench"]) {
    assert.ok(!allowed.includes(heavy), `${heavy} stays out of the build context`);
  }
});

void test("HEALTHCHECK uses node (no curl in the image) and runs on an interval", () => {
  const hc = all(runtime, "HEALTHCHECK");
  assert.equal(hc.length, 1);
  assert.match(hc[0]!.args, /--interval=\d+s/);
  const cmd = jsonForm(hc[0]);
  assert.deepEqual(cmd.slice(0, 2), ["node", "-e"]);
  assert.ok(!/curl|wget/.test(hc[0]!.args));
});

/** The compiled sources next to this test (dist/src or .build/<x>/src). */
function compiledSources(): string[] {
  const dir = fileURLToPath(new URL("../../src/", import.meta.url));
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith(".js")) out.push(p);
    }
  };
  walk(dir);
  return out;
}

void test("the compiled code imports only production dependencies (the image has no dev dependencies)", () => {
  const builtins = new Set(builtinModules);
  const files = compiledSources();
  assert.ok(
    files.some((f) => f.endsWith("cli.js")),
    "found the compiled CLI",
  );
  const bad: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)["']([^"'.][^"']*)["']/g,
    )) {
      const spec = m[1]!;
      if (spec.startsWith("node:") || builtins.has(spec)) continue;
      const pkg = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]!;
      if (!(pkg in PKG.dependencies))
        bad.push(`${file.slice(file.lastIndexOf("/src/") + 1)} imports ${spec}`);
    }
  }
  assert.deepEqual(bad, [], "move these to dependencies in package.json or stop importing them from src/");
});

// ---- the HEALTHCHECK command, run for real --------------------------------------------------------

const HEALTH_JS = jsonForm(all(runtime, "HEALTHCHECK")[0])[2]!;

function runHealthcheck(env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", HEALTH_JS], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: "ignore",
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("healthcheck did not finish within 15 s"));
    }, 15_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
}

async function serve(status: number): Promise<{ server: Server; port: number; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? "");
    res.writeHead(status, { "content-type": "application/json" }).end("{}");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port, paths };
}

async function deadPort(): Promise<number> {
  const { server, port } = await serve(200);
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

void test("the HEALTHCHECK command passes on a live /livez and fails on a dead or unhealthy port", async (t) => {
  const live = await serve(200);
  const sick = await serve(503);
  t.after(() => {
    live.server.close();
    sick.server.close();
  });
  const dead = await deadPort();
  // Sidecar: the control port (TASKLB_CONTROL); the router's admin port is not there.
  assert.equal(
    await runHealthcheck({ TASKLB_CONTROL: `0.0.0.0:${live.port}`, TASKLB_ADMIN: `0.0.0.0:${dead}` }),
    0,
  );
  assert.deepEqual(live.paths, ["/livez"]);
  // Router: the admin port.
  assert.equal(await runHealthcheck({ TASKLB_CONTROL: `0.0.0.0:${dead}`, TASKLB_ADMIN: `:${live.port}` }), 0);
  assert.equal(
    await runHealthcheck({ TASKLB_CONTROL: `0.0.0.0:${dead}`, TASKLB_ADMIN: `0.0.0.0:${dead}` }),
    1,
  );
  assert.equal(
    await runHealthcheck({ TASKLB_CONTROL: `0.0.0.0:${sick.port}`, TASKLB_ADMIN: `0.0.0.0:${dead}` }),
    1,
  );
  assert.equal(await runHealthcheck({ TASKLB_HEALTH_URL: `http://127.0.0.1:${live.port}/livez` }), 0);
  assert.equal(await runHealthcheck({ TASKLB_HEALTH_URL: `http://127.0.0.1:${sick.port}/livez` }), 1);
});

// ---- the runtime's NODE_OPTIONS ---------------------------------------------------------------------

test("the image leaves NODE_OPTIONS to the role's manifest", () => {
  // The sidecar and the router want different young generations (memory per pod against
  // throughput with large bodies); one image-wide value would be wrong for one of them. The
  // manifests' values are checked in deploy.test.ts and deploy-compose.test.ts.
  const env = all(runtime, "ENV").find((i) => /(^|\s)NODE_OPTIONS=/.test(i.args));
  assert.equal(env, undefined, `the runtime stage sets NODE_OPTIONS: ${env?.args}`);
});
