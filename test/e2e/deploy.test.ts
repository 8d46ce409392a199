/**
 * The Kubernetes manifests in deploy/kubernetes, checked offline: `kubectl kustomize` renders the
 * base and every example overlay; every object validates against the API schema
 * (kubernetes-models); and the things a schema does not catch are checked here: unknown fields,
 * ports and probes that point at nothing, the sidecar's shape (native sidecar, loopback app,
 * control port on the pod IP), security settings, and above all that the flags and TASKLB_*
 * variables the manifests pass are parsed by the real `loadSidecarConfig` / `loadRouterConfig`,
 * so a renamed flag breaks this test instead of a user's rollout.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { loadSidecarConfig, SIDECAR_OPTIONS, type SidecarConfig } from "../../src/sidecar/config.js";
import { loadRouterConfig, ROUTER_OPTIONS, type RouterConfig } from "../../src/router/config.js";
import { envName, type OptionSpec } from "../../src/shared/config.js";
import { readTelemetrySettings } from "../../src/telemetry/otel-env.js";
import { assertYoungGenerationCapped, semiSpaceMiB } from "../helpers/node-options.js";

// ---- where things are -------------------------------------------------------------------------

/** The repository root, found from this file (compiled to dist/test/e2e or .build/<x>/test/e2e). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "deploy", "kubernetes", "base", "kustomization.yaml"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("deploy/kubernetes not found above " + fileURLToPath(import.meta.url));
    dir = up;
  }
}

const ROOT = repoRoot();
const K8S = join(ROOT, "deploy", "kubernetes");
const EXAMPLES = join(K8S, "examples");

/**
 * The recipe in docs/deploy.md ("Adding tasklb to your existing app"), built in a temporary folder
 * from the YAML blocks of the doc itself, around a stand-in for "your app", so the documented
 * overlay is checked like the shipped ones.
 */
function docsRecipe(): string {
  const doc = readFileSync(join(ROOT, "docs", "deploy.md"), "utf8");
  const blocks = new Map<string, string>();
  for (const m of doc.matchAll(/```yaml\n# (my-app\/tasklb\/[\w.-]+)[^\n]*\n([\s\S]*?)```/g))
    blocks.set(m[1]!, m[2]!);
  assert.ok(
    blocks.has("my-app/tasklb/kustomization.yaml") && blocks.has("my-app/tasklb/tasklb-patch.yaml"),
    "docs/deploy.md has the recipe's YAML",
  );
  const tmp = mkdtempSync(join(tmpdir(), "tasklb-deploy-"));
  process.once("exit", () => rmSync(tmp, { recursive: true, force: true }));
  mkdirSync(join(tmp, "my-app", "base"), { recursive: true });
  mkdirSync(join(tmp, "my-app", "tasklb"), { recursive: true });
  mkdirSync(join(tmp, "vendor"), { recursive: true });
  symlinkSync(K8S, join(tmp, "vendor", "tasklb"));
  for (const [path, text] of blocks) writeFileSync(join(tmp, path), text);
  const sampleApp = readFileSync(join(EXAMPLES, "sample-app", "sample-app.yaml"), "utf8");
  const headless = parseAllDocuments(sampleApp)
    .map((d) => d.toJS() as Obj)
    .find((o) => o.spec?.clusterIP === "None")!;
  headless.metadata = { name: "my-app-tasklb" };
  headless.spec.selector = { app: "my-app" };
  writeFileSync(join(tmp, "my-app", "tasklb", "headless-service.yaml"), JSON.stringify(headless));
  writeFileSync(join(tmp, "my-app", "base", "kustomization.yaml"), "resources: [app.yaml]\n");
  const container = {
    name: "web",
    image: "registry.example.com/my-app:1.2.3",
    ports: [{ name: "http", containerPort: 3000 }],
    securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } },
  };
  const app = [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "my-app", labels: { "tasklb.io/sidecar": "enabled" } },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "my-app" } },
        template: {
          metadata: {
            labels: { app: "my-app" },
            annotations: {
              "prometheus.io/scrape": "true",
              "prometheus.io/port": "9901",
              "prometheus.io/path": "/metrics",
            },
          },
          spec: {
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 10001,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [container],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "my-app" },
      spec: { selector: { app: "my-app" }, ports: [{ name: "http", port: 80, targetPort: "tasklb" }] },
    },
  ];
  writeFileSync(join(tmp, "my-app", "base", "app.yaml"), app.map((o) => JSON.stringify(o)).join("\n---\n"));
  return join(tmp, "my-app", "tasklb");
}

/** base, every overlay under examples/ (each folder with a kustomization.yaml), and the docs' recipe. */
function kustomizations(): string[] {
  const dirs = [join(K8S, "base")];
  for (const name of readdirSync(EXAMPLES).sort()) {
    if (existsSync(join(EXAMPLES, name, "kustomization.yaml"))) dirs.push(join(EXAMPLES, name));
  }
  dirs.push(DOCS_RECIPE);
  return dirs;
}

// ---- rendering ---------------------------------------------------------------------------------

// Rendered manifests are plain JSON walked by many checks; `any` keeps them readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

function requireKubectl(): void {
  const r = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8", timeout: 30_000 });
  if (r.error || r.status !== 0) {
    assert.fail(
      "kubectl is needed to render deploy/kubernetes with `kubectl kustomize` (no cluster needed) but " +
        `it could not be run: ${r.error?.message ?? r.stderr}. Install kubectl >= 1.27 (kustomize v5) on PATH.`,
    );
  }
}

const renders = new Map<string, Obj[]>();

function render(dir: string): Obj[] {
  let objs = renders.get(dir);
  if (objs) return objs;
  requireKubectl();
  const out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", timeout: 60_000 });
  objs = parseAllDocuments(out).map((d) => {
    if (d.errors.length > 0) throw new Error(`${dir}: ${d.errors.map((e) => e.message).join("; ")}`);
    return d.toJS() as Obj;
  });
  renders.set(dir, objs);
  return objs;
}

const label = (dir: string) => (dir === DOCS_RECIPE ? "docs/deploy.md recipe" : relative(ROOT, dir));
const ident = (o: Obj) => `${o.kind}/${o.metadata?.name as string}`;

// ---- schema validation -------------------------------------------------------------------------

const MODELS: Record<string, new (data: Obj) => { validate(): void }> = {
  "apps/v1 Deployment": Deployment,
  "v1 Service": Service,
  "v1 ServiceAccount": ServiceAccount,
  "v1 Secret": Secret,
  "v1 ConfigMap": ConfigMap,
  "v1 Namespace": Namespace,
  "policy/v1 PodDisruptionBudget": PodDisruptionBudget,
};

/**
 * Field names per type, read from the .d.ts files kubernetes-models generates from the OpenAPI
 * schema: the schema validation there ignores fields it does not know (a typo such as
 * `livenesProbe` would pass and be dropped by the API server), so this walks every object and
 * reports any key the type does not declare.
 */
const req = createRequire(import.meta.url);
function packageRoot(file: string): string {
  let dir = dirname(file);
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}
const KM_ROOT = packageRoot(req.resolve("kubernetes-models"));
const APIMACHINERY_ROOT = packageRoot(
  createRequire(join(KM_ROOT, "index.js")).resolve("@kubernetes-models/apimachinery"),
);

interface Shape {
  readonly props: Map<string, string>;
  readonly imports: Map<string, string>;
}
const shapes = new Map<string, Shape | null>();

function shapeOf(dtsFile: string): Shape | null {
  if (shapes.has(dtsFile)) return shapes.get(dtsFile)!;
  let shape: Shape | null = null;
  if (existsSync(dtsFile)) {
    const text = readFileSync(dtsFile, "utf8");
    const imports = new Map<string, string>();
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
      const spec = m[2]!;
      if (spec.startsWith(".")) imports.set(m[1]!, resolve(dirname(dtsFile), spec + ".d.ts"));
      else if (spec.startsWith("@kubernetes-models/apimachinery/")) {
        imports.set(
          m[1]!,
          join(APIMACHINERY_ROOT, spec.slice("@kubernetes-models/apimachinery/".length) + ".d.ts"),
        );
      }
    }
    const iface = /^export interface \w+(?: extends ([\w, ]+))? \{\n([\s\S]*?)\n\}/m.exec(text);
    if (iface) {
      const props = new Map<string, string>();
      for (const m of iface[2]!.matchAll(/^ {4}"([^"]+)"\??: (.*?);?$/gm)) props.set(m[1]!, m[2]!);
      if (iface[1]?.includes("TypeMeta")) {
        props.set("apiVersion", "string");
        props.set("kind", "string");
      }
      shape = { props, imports };
    }
  }
  shapes.set(dtsFile, shape);
  return shape;
}

function modelFile(apiVersion: string, kind: string): string {
  return join(KM_ROOT, apiVersion, kind + ".d.ts");
}

function unknownFields(value: unknown, dtsFile: string, path: string, out: string[]): string[] {
  const shape = shapeOf(dtsFile);
  if (!shape || value === null || typeof value !== "object" || Array.isArray(value)) return out;
  for (const [key, child] of Object.entries(value)) {
    const type = shape.props.get(key);
    if (type === undefined) {
      out.push(`${path}.${key}`);
      continue;
    }
    const ref = /^(?:Array<)?(I\w+)>?$/.exec(type.trim());
    const target = ref ? shape.imports.get(ref[1]!) : undefined;
    if (!target) continue;
    if (Array.isArray(child)) child.forEach((c, i) => unknownFields(c, target, `${path}.${key}[${i}]`, out));
    else unknownFields(child, target, `${path}.${key}`, out);
  }
  return out;
}

// ---- pods, ports, env --------------------------------------------------------------------------

interface Pod {
  readonly owner: Obj;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly spec: Obj;
}

function pods(objs: Obj[]): Pod[] {
  return objs
    .filter((o) => o.kind === "Deployment")
    .map((d) => ({
      owner: d,
      namespace: d.metadata.namespace ?? "default",
      labels: d.spec.template.metadata?.labels ?? {},
      annotations: d.spec.template.metadata?.annotations ?? {},
      spec: d.spec.template.spec,
    }));
}

const allContainers = (spec: Obj): Obj[] => [...(spec.initContainers ?? []), ...(spec.containers ?? [])];

type Role = "sidecar" | "router";
function roleOf(c: Obj): Role | undefined {
  const repo = String(c.image ?? "").replace(/[:@].*$/, "");
  if (!/(^|\/)tasklb$/.test(repo)) return undefined;
  const sub = (c.args ?? [])[0] as string | undefined;
  assert.ok(
    sub === "sidecar" || sub === "router",
    `${c.name as string}: a tasklb container's first arg is the role`,
  );
  return sub;
}

/** A port (name or number) of one container, as a number. */
function containerPort(c: Obj, port: string | number): number | undefined {
  for (const p of c.ports ?? []) {
    if (typeof port === "number" ? p.containerPort === port : p.name === port)
      return p.containerPort as number;
  }
  return undefined;
}
/** A port (name or number) of any container in the pod. */
function podPort(spec: Obj, port: string | number): number | undefined {
  for (const c of allContainers(spec)) {
    const n = containerPort(c, port);
    if (n !== undefined) return n;
  }
  return undefined;
}

const POD_IP = "10.42.0.17";

/**
 * The environment the container would see, built the way the kubelet does: literal values with
 * `$(VAR)` expanded from variables defined earlier, downward-API fields, and Secret keys from the
 * rendered Secrets (where the Secret is in the render; a reference to the documented external
 * Secret `tasklb-token` gets a stand-in value).
 */
function containerEnv(c: Obj, pod: Pod, objs: Obj[], where: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    let v: string | undefined;
    if (e.value !== undefined) {
      v = String(e.value).replace(/\$\((\w+)\)/g, (whole, name: string) => env[name] ?? whole);
      assert.ok(
        !/\$\(\w+\)/.test(v),
        `${where}: env ${e.name} refers to a variable not defined before it: ${v}`,
      );
    } else if (e.valueFrom?.fieldRef) {
      const f = e.valueFrom.fieldRef.fieldPath as string;
      const fields: Record<string, string> = {
        "status.podIP": POD_IP,
        "metadata.name": `${pod.owner.metadata.name}-7d9f8-abcde`,
        "metadata.namespace": pod.namespace,
        "spec.nodeName": "node-1",
      };
      v = fields[f];
      assert.ok(v !== undefined, `${where}: env ${e.name} uses an unexpected fieldRef ${f}`);
    } else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const secret = objs.find((o) => o.kind === "Secret" && o.metadata.name === name);
      if (secret) {
        const data =
          secret.data?.[key] ??
          (secret.stringData?.[key] !== undefined
            ? Buffer.from(secret.stringData[key]).toString("base64")
            : undefined);
        assert.ok(data !== undefined, `${where}: Secret ${name} has no key ${key}`);
        v = Buffer.from(data, "base64").toString("utf8");
      } else {
        assert.equal(
          name,
          "tasklb-token",
          `${where}: env ${e.name} refers to Secret ${name}, which is not in the render`,
        );
        v = "stand-in-token-for-the-external-secret";
      }
    } else {
      assert.fail(`${where}: env ${e.name} has no value this test understands`);
    }
    env[e.name] = v;
  }
  return env;
}

/** Every TASKLB_* variable must be an option of that role: a typo or a renamed flag is silently ignored otherwise. */
function assertKnownEnv(env: Record<string, string>, specs: readonly OptionSpec[], where: string): void {
  const known = new Set([...specs.map(envName), "TASKLB_CONFIG"]);
  for (const name of Object.keys(env)) {
    if (name.startsWith("TASKLB_"))
      assert.ok(known.has(name), `${where}: ${name} is not a setting of this role`);
  }
}

interface Parsed {
  readonly pod: Pod;
  readonly container: Obj;
  readonly env: Record<string, string>;
  readonly where: string;
}
interface ParsedSidecar extends Parsed {
  readonly config: SidecarConfig;
}
interface ParsedRouter extends Parsed {
  readonly config: RouterConfig;
}

function parseTasklb(objs: Obj[], dir: string): { sidecars: ParsedSidecar[]; routers: ParsedRouter[] } {
  const sidecars: ParsedSidecar[] = [];
  const routers: ParsedRouter[] = [];
  for (const pod of pods(objs)) {
    for (const c of allContainers(pod.spec)) {
      const role = roleOf(c);
      if (!role) continue;
      const where = `${label(dir)}: ${ident(pod.owner)} container ${c.name as string}`;
      const env = containerEnv(c, pod, objs, where);
      const argv = (c.args as string[]).slice(1);
      if (role === "sidecar") {
        assertKnownEnv(env, SIDECAR_OPTIONS, where);
        sidecars.push({ pod, container: c, env, where, config: loadSidecarConfig(argv, env) });
      } else {
        assertKnownEnv(env, ROUTER_OPTIONS, where);
        routers.push({ pod, container: c, env, where, config: loadRouterConfig(argv, env) });
      }
    }
  }
  return { sidecars, routers };
}

function selects(svc: Obj, pod: Pod): boolean {
  const sel: Record<string, string> = svc.spec?.selector ?? {};
  const ns = svc.metadata.namespace ?? "default";
  return (
    ns === pod.namespace &&
    Object.keys(sel).length > 0 &&
    Object.entries(sel).every(([k, v]) => pod.labels[k] === v)
  );
}

function probes(c: Obj): [string, Obj][] {
  return (["startupProbe", "readinessProbe", "livenessProbe"] as const)
    .filter((k) => c[k] !== undefined)
    .map((k) => [k, c[k] as Obj]);
}

/** Liveness on /livez, readiness on /readyz (startup, if any, on /livez), all on the port that serves them. */
function assertProbes(c: Obj, port: number, where: string): void {
  const ps = probes(c);
  const kinds = ps.map(([k]) => k);
  assert.ok(
    kinds.includes("livenessProbe") && kinds.includes("readinessProbe"),
    `${where}: liveness and readiness probes`,
  );
  for (const [kind, probe] of ps) {
    const expected = kind === "readinessProbe" ? "/readyz" : "/livez";
    assert.equal(probe.httpGet?.path, expected, `${where}: ${kind} path`);
    assert.equal(
      containerPort(c, probe.httpGet.port),
      port,
      `${where}: ${kind} port is the port serving ${expected}`,
    );
  }
}

const DOCS_RECIPE = docsRecipe();

// ---- the tests ---------------------------------------------------------------------------------

void test("kubectl is available to render the manifests", () => {
  requireKubectl();
});

void test("the component is a kustomize Component and the example overlay uses it", () => {
  const comp = parseAllDocuments(
    readFileSync(join(K8S, "components", "sidecar", "kustomization.yaml"), "utf8"),
  )[0]!.toJS();
  assert.equal(comp.apiVersion, "kustomize.config.k8s.io/v1alpha1");
  assert.equal(comp.kind, "Component");
  const overlays = kustomizations().slice(1);
  assert.ok(overlays.length >= 1, "at least one example overlay");
  const sample = parseAllDocuments(
    readFileSync(join(EXAMPLES, "sample-app", "kustomization.yaml"), "utf8"),
  )[0]!.toJS();
  assert.ok((sample.components as string[]).includes("../../components/sidecar"));
  assert.ok((sample.resources as string[]).includes("../../base"));
});

for (const dir of kustomizations()) {
  const name = label(dir);

  void test(`${name}: sidecars run with a capped young generation that Node accepts, routers with V8's default`, () => {
    const { sidecars, routers } = parseTasklb(render(dir), dir);
    for (const s of sidecars) assertYoungGenerationCapped(s.env.NODE_OPTIONS ?? "", s.where);
    // The router keeps its throughput with large bodies (BENCHMARKS.md, "Memory").
    for (const r of routers) assert.equal(semiSpaceMiB(r.env.NODE_OPTIONS), undefined, r.where);
  });

  void test(`${name}: renders and every object validates against the Kubernetes schema`, () => {
    const objs = render(dir);
    assert.ok(objs.length > 0, "renders something");
    for (const o of objs) {
      const Model = MODELS[`${o.apiVersion as string} ${o.kind as string}`];
      assert.ok(
        Model,
        `${ident(o)}: no schema model for ${o.apiVersion as string} ${o.kind as string}; add it to MODELS`,
      );
      assert.doesNotThrow(() => new Model(o).validate(), `${ident(o)} fails schema validation`);
    }
  });

  void test(`${name}: no unknown fields anywhere (typos the schema check and the API server would drop)`, () => {
    for (const o of render(dir)) {
      const found = unknownFields(o, modelFile(o.apiVersion, o.kind), ident(o), []);
      assert.deepEqual(found, [], `${ident(o)} has fields the API does not know`);
    }
  });

  void test(`${name}: every Service port and probe points at a declared container port`, () => {
    const objs = render(dir);
    const ps = pods(objs);
    for (const svc of objs.filter((o) => o.kind === "Service")) {
      const selected = ps.filter((p) => selects(svc, p));
      assert.ok(selected.length > 0, `${ident(svc)} selects no pods in the render`);
      for (const sp of svc.spec.ports) {
        const target = (sp.targetPort ?? sp.port) as string | number;
        for (const p of selected) {
          assert.ok(
            podPort(p.spec, target) !== undefined,
            `${ident(svc)} port ${sp.name as string} targets ${target}, which ${ident(p.owner)} does not declare`,
          );
        }
      }
    }
    for (const p of ps) {
      const names = new Set<string>();
      for (const c of allContainers(p.spec)) {
        for (const port of c.ports ?? []) {
          if (port.name === undefined) continue;
          assert.ok(
            port.name.length <= 15,
            `${ident(p.owner)}: port name ${port.name} is longer than 15 characters`,
          );
          assert.ok(
            !names.has(port.name),
            `${ident(p.owner)}: port name ${port.name} is used twice in the pod`,
          );
          names.add(port.name);
        }
        for (const [kind, probe] of probes(c)) {
          const port = probe.httpGet?.port ?? probe.tcpSocket?.port;
          assert.ok(
            port !== undefined,
            `${ident(p.owner)} ${c.name as string} ${kind}: httpGet or tcpSocket expected`,
          );
          // The kubelet resolves a probe's named port within the same container.
          assert.ok(
            containerPort(c, port) !== undefined,
            `${ident(p.owner)} ${c.name as string} ${kind} port ${port} is not a port of that container`,
          );
        }
      }
    }
  });

  void test(`${name}: pods run unprivileged (non-root, no privilege escalation, no capabilities, RuntimeDefault seccomp)`, () => {
    for (const p of pods(render(dir))) {
      const podSc: Obj = p.spec.securityContext ?? {};
      for (const c of allContainers(p.spec)) {
        const sc: Obj = c.securityContext ?? {};
        const where = `${ident(p.owner)} container ${c.name as string}`;
        assert.equal(sc.runAsNonRoot ?? podSc.runAsNonRoot, true, `${where}: runAsNonRoot`);
        const uid = sc.runAsUser ?? podSc.runAsUser;
        assert.ok(typeof uid === "number" && uid > 0, `${where}: a numeric non-zero runAsUser`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation false`);
        assert.notEqual(sc.privileged, true, `${where}: not privileged`);
        assert.ok((sc.capabilities?.drop ?? []).includes("ALL"), `${where}: capabilities drop ALL`);
        assert.deepEqual(
          sc.capabilities?.add ?? [],
          [],
          `${where}: no added capabilities (no NET_ADMIN, no iptables)`,
        );
        assert.equal(
          (sc.seccompProfile ?? podSc.seccompProfile)?.type,
          "RuntimeDefault",
          `${where}: seccomp RuntimeDefault`,
        );
        if (roleOf(c)) assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
      }
      assert.notEqual(p.spec.hostNetwork, true, `${ident(p.owner)}: no hostNetwork`);
    }
  });

  void test(`${name}: tasklb containers parse with the real config loaders and match their ports, probes and annotations`, () => {
    const objs = render(dir);
    const { sidecars, routers } = parseTasklb(objs, dir);
    assert.ok(routers.length >= 1, "the render runs a router");

    for (const r of routers) {
      const c = r.container;
      assert.equal(
        containerPort(c, "http"),
        r.config.listen.port,
        `${r.where}: port "http" is the router's --listen port`,
      );
      assert.equal(
        containerPort(c, "admin"),
        r.config.admin.port,
        `${r.where}: port "admin" is the router's --admin port`,
      );
      assert.equal(
        r.config.listen.host,
        "0.0.0.0",
        `${r.where}: data port on all addresses (Service traffic arrives on the pod IP)`,
      );
      assert.equal(
        r.config.admin.host,
        "0.0.0.0",
        `${r.where}: admin port on all addresses (kubelet probes the pod IP)`,
      );
      assert.ok(r.config.token, `${r.where}: a shared token is configured`);
      assertProbes(c, r.config.admin.port, r.where);
    }
    for (const s of sidecars) {
      const c = s.container;
      assert.ok(
        (s.pod.spec.initContainers ?? []).includes(c),
        `${s.where}: the sidecar is an init container (native sidecar)`,
      );
      assert.equal(c.restartPolicy, "Always", `${s.where}: restartPolicy Always makes it a native sidecar`);
      assert.equal(
        containerPort(c, "tasklb"),
        s.config.listen.port,
        `${s.where}: port "tasklb" is the sidecar's --listen port`,
      );
      assert.equal(
        containerPort(c, "tasklb-control"),
        s.config.control.port,
        `${s.where}: port "tasklb-control" is --control`,
      );
      assert.equal(s.config.listen.host, "0.0.0.0", `${s.where}: data port on the pod IP`);
      assert.equal(
        s.config.control.host,
        "0.0.0.0",
        `${s.where}: control port on the pod IP, where kubelet probes and routers poll`,
      );
      assert.ok(
        ["127.0.0.1", "localhost", "[::1]"].includes(s.config.app.hostname),
        `${s.where}: --app is the app on loopback, got ${s.config.app.href}`,
      );
      assert.equal(
        s.config.advertiseHost,
        POD_IP,
        `${s.where}: --advertise-host is the pod IP from the downward API`,
      );
      assert.ok(s.config.token, `${s.where}: a shared token is configured`);
      assertProbes(c, s.config.control.port, s.where);

      const appPort = Number(s.config.app.port || 80);
      const app = s.pod.spec.containers.find((x: Obj) => containerPort(x, appPort) !== undefined);
      assert.ok(app, `${s.where}: --app port ${appPort} is a declared port of an app container in the pod`);
      assert.notEqual(
        appPort,
        s.config.listen.port,
        `${s.where}: the sidecar and the app cannot share a port in one pod`,
      );
      const first = s.pod.spec.containers[0];
      assert.ok(
        first.lifecycle?.preStop?.sleep?.seconds >= 5,
        `${s.where}: the app container gets a preStop sleep so endpoints converge first`,
      );
    }

    for (const x of [...sidecars, ...routers]) {
      assert.ok(
        x.container.resources?.requests?.cpu && x.container.resources?.requests?.memory,
        `${x.where}: cpu and memory requests`,
      );
      assert.ok(x.container.resources?.limits?.memory, `${x.where}: a memory limit`);
      const grace = (x.pod.spec.terminationGracePeriodSeconds as number | undefined) ?? 30;
      const preStop = (x.container.lifecycle?.preStop?.sleep?.seconds as number | undefined) ?? 0;
      assert.ok(
        preStop + x.config.drainGraceMs / 1000 < grace,
        `${x.where}: preStop ${preStop}s + drain ${x.config.drainGraceMs} ms fit in terminationGracePeriodSeconds ${grace}`,
      );
      const otel = readTelemetrySettings(x.env, "tasklb");
      assert.deepEqual(otel.warnings, [], `${x.where}: OTEL_* settings are understood`);
      if (x.env.OTEL_EXPORTER_OTLP_ENDPOINT)
        assert.equal(otel.traces.exporter, "otlp", `${x.where}: traces go to the OTLP endpoint`);
      if (x.env.OTEL_RESOURCE_ATTRIBUTES?.includes("k8s.pod.name")) {
        assert.match(
          otel.resourceAttributes["k8s.pod.name"] ?? "",
          /-abcde$/,
          `${x.where}: k8s.pod.name comes from the downward API`,
        );
      }
    }

    // Prometheus scrape annotations name a port that serves /metrics: a sidecar's control port or a router's admin port.
    for (const p of pods(objs)) {
      if (p.annotations["prometheus.io/scrape"] !== "true") continue;
      const port = Number(p.annotations["prometheus.io/port"]);
      assert.equal(p.annotations["prometheus.io/path"], "/metrics", `${ident(p.owner)}: scrape path`);
      const serving = [
        ...sidecars.filter((s) => s.pod.owner === p.owner).map((s) => s.config.control.port),
        ...routers.filter((r) => r.pod.owner === p.owner).map((r) => r.config.admin.port),
      ];
      assert.ok(
        serving.includes(port),
        `${ident(p.owner)}: prometheus.io/port ${port} is not a tasklb metrics port (${serving.join(", ")})`,
      );
    }
  });

  void test(`${name}: routers can find the sidecars (headless Service DNS or registration to a router Service)`, () => {
    const objs = render(dir);
    const { sidecars, routers } = parseTasklb(objs, dir);
    const services = objs.filter((o) => o.kind === "Service");
    for (const r of routers) {
      for (const pool of r.config.pools) {
        for (const target of pool.dns) {
          const [svcName, ns] = target.name.split(".");
          const svc = services.find(
            (s) => s.metadata.name === svcName && (ns === undefined || s.metadata.namespace === ns),
          );
          assert.ok(svc, `${r.where}: --dns ${target.name} is not a Service in the render`);
          assert.equal(
            svc.spec.clusterIP,
            "None",
            `${r.where}: ${ident(svc)} must be headless so its name resolves to every pod`,
          );
          const sp = (svc.spec.ports as Obj[]).find((x) => x.port === target.port);
          assert.ok(sp, `${r.where}: ${ident(svc)} has no port ${target.port}`);
          const behind = sidecars.filter((s) => selects(svc, s.pod));
          assert.ok(behind.length > 0, `${r.where}: ${ident(svc)} selects no pods with a sidecar`);
          for (const s of behind) {
            // DNS gives pod IPs: the router then connects to the DNS port directly (not the Service's targetPort).
            assert.equal(
              target.port,
              s.config.listen.port,
              `${r.where}: --dns port is the sidecar's data port`,
            );
            assert.equal(
              r.config.sidecarControlPort,
              s.config.control.port,
              `${r.where}: --sidecar-control-port is the sidecars' control port`,
            );
          }
        }
      }
    }
    for (const s of sidecars) {
      for (const url of s.config.router) {
        const svc = services.find((x) => x.metadata.name === url.hostname.split(".")[0]);
        assert.ok(svc, `${s.where}: --router ${url.href} is not a Service in the render`);
        const sp = (svc.spec.ports as Obj[]).find((x) => x.port === Number(url.port || 80));
        assert.ok(sp, `${s.where}: ${ident(svc)} has no port ${url.port}`);
        const behind = routers.filter((r) => selects(svc, r.pod));
        assert.ok(behind.length > 0, `${s.where}: --router ${url.href} selects no router pods`);
        for (const r of behind) {
          assert.equal(
            podPort(r.pod.spec, sp.targetPort ?? sp.port),
            r.config.admin.port,
            `${s.where}: --router reaches the routers' admin port`,
          );
        }
      }
    }
    if (sidecars.length > 0) {
      const found =
        routers.some((r) => r.config.pools.some((p) => p.dns.length > 0 || p.servers.length > 0)) ||
        sidecars.every((s) => s.config.router.length > 0);
      assert.ok(
        found,
        "with sidecars in the render, routers learn of them by DNS, a server list or registration",
      );
    }
  });

  void test(`${name}: the app's Service targets the sidecar, so every call is timed`, () => {
    const objs = render(dir);
    const { sidecars } = parseTasklb(objs, dir);
    for (const svc of objs.filter((o) => o.kind === "Service" && o.spec.clusterIP !== "None")) {
      for (const s of sidecars.filter((x) => selects(svc, x.pod))) {
        for (const sp of svc.spec.ports as Obj[]) {
          const port = podPort(s.pod.spec, sp.targetPort ?? sp.port);
          assert.ok(
            port === s.config.listen.port || port === s.config.control.port,
            `${ident(svc)} port ${sp.name as string} bypasses the sidecar (targets ${port})`,
          );
        }
      }
    }
  });

  void test(`${name}: the router runs highly available (replicas, PodDisruptionBudget, rolling update)`, () => {
    const objs = render(dir);
    const { routers } = parseTasklb(objs, dir);
    for (const r of routers) {
      const d = r.pod.owner;
      assert.ok(d.spec.replicas >= 2, `${ident(d)}: two or more replicas`);
      assert.equal(
        d.spec.strategy?.rollingUpdate?.maxUnavailable,
        0,
        `${ident(d)}: a rollout never drops below the replica count`,
      );
      const pdb = objs.find(
        (o) =>
          o.kind === "PodDisruptionBudget" &&
          Object.entries(o.spec.selector.matchLabels as Record<string, string>).every(
            ([k, v]) => r.pod.labels[k] === v,
          ),
      );
      assert.ok(pdb, `${ident(d)}: a PodDisruptionBudget covers the routers`);
      assert.ok(
        pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < d.spec.replicas,
        `${ident(pdb)}: keeps one router up and still lets nodes drain`,
      );
      assert.equal(
        r.pod.spec.enableServiceLinks,
        false,
        `${ident(d)}: no service-link variables next to TASKLB_* settings`,
      );
    }
  });
}

void test("the sample-app example wires the whole picture: namespace, token, OTel, scraping", () => {
  const dir = join(EXAMPLES, "sample-app");
  const objs = render(dir);
  const { sidecars, routers } = parseTasklb(objs, dir);
  assert.equal(sidecars.length, 1, "one app Deployment gets the sidecar");
  assert.ok(routers[0]!.config.pools[0]!.dns.length > 0, "routers use the headless Service");
  assert.ok(objs.some((o) => o.kind === "Namespace"));
  assert.ok(
    objs.some((o) => o.kind === "Secret" && /^tasklb-token-/.test(o.metadata.name)),
    "the token Secret is generated (hash-suffixed)",
  );
  for (const x of [...sidecars, ...routers]) {
    for (const v of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"]) {
      assert.ok(x.env[v], `${x.where}: ${v}`);
    }
    assert.equal(x.pod.annotations["prometheus.io/scrape"], "true", `${x.where}: scrape annotations`);
  }
});

void test("the docs' recipe adds the sidecar to the labelled app, forwarding to its own port, found by DNS", () => {
  const objs = render(DOCS_RECIPE);
  const { sidecars, routers } = parseTasklb(objs, DOCS_RECIPE);
  assert.equal(sidecars.length, 1);
  assert.equal(sidecars[0]!.config.app.port, "3000");
  assert.equal(sidecars[0]!.pod.owner.metadata.namespace, "my-namespace");
  assert.deepEqual(routers[0]!.config.pools[0]!.dns, [{ name: "my-app-tasklb", port: 8480 }]);
});

// ---- the real processes serve what the manifests probe ------------------------------------------

const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));

interface Started {
  readonly child: ChildProcess;
  readonly ready: Record<string, unknown>;
  readonly exited: Promise<number | null>;
}

/** Starts `tasklb <role>` and resolves with its "<role> listening" log record (bounded wait). */
function startTasklb(role: Role, argv: string[], env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, [CLI, role, ...argv], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return new Promise((resolve, reject) => {
    let buf = "";
    let log = "";
    const timer = setTimeout(
      () => fail(new Error(`tasklb ${role} did not log "listening" within 20 s:\n${log}`)),
      20_000,
    );
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(err);
    };
    const onEarlyExit = (code: number | null) =>
      fail(new Error(`tasklb ${role} exited with ${code}:\n${log}`));
    child.once("exit", onEarlyExit);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      log += chunk;
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          if (rec.msg === `${role} listening`) {
            clearTimeout(timer);
            child.off("exit", onEarlyExit);
            resolve({ child, ready: rec, exited });
          }
        } catch {
          // not a log line
        }
      }
    });
  });
}

/** A port from a logged address: "host:port", "[v6]:port", a URL, or { port }. */
function loggedPort(v: unknown): number {
  if (v && typeof v === "object" && "port" in v) return Number(v.port);
  const text = String(v);
  const m = /:(\d+)\/?$/.exec(text);
  assert.ok(m, `a port in ${text}`);
  return Number(m[1]);
}

async function get(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; type: string }> {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text(), type: res.headers.get("content-type") ?? "" };
}

/** Polls until the URL answers `status` (bounded: 15 s). */
async function until(url: string, status: number): Promise<void> {
  let last = 0;
  for (let i = 0; i < 75; i++) {
    last = await get(url).then(
      (r) => r.status,
      () => 0,
    );
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`${url} answered ${last}, expected ${status}`);
}

const HEALTHCHECK_JS = (() => {
  const line = readFileSync(join(ROOT, "Dockerfile"), "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .find((l) => l.startsWith("HEALTHCHECK"));
  assert.ok(line, "the Dockerfile has a HEALTHCHECK");
  return (JSON.parse(line.slice(line.indexOf("["))) as string[])[2]!;
})();

function healthcheck(env: Record<string, string>): Promise<number | null> {
  const child = spawn(process.execPath, ["-e", HEALTHCHECK_JS], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: "ignore",
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  return new Promise((r) => child.once("exit", (code) => (clearTimeout(timer), r(code))));
}

void test("sample-app: the real sidecar and router answer every probe, scrape and poll the manifests use, and drain on SIGTERM", async (t) => {
  const dir = join(EXAMPLES, "sample-app");
  const objs = render(dir);
  const { sidecars, routers } = parseTasklb(objs, dir);
  const s = sidecars[0]!;
  const r = routers[0]!;

  const app = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((done) => app.listen(0, "127.0.0.1", done));
  t.after(() => app.close());
  const appPort = (app.address() as AddressInfo).port;
  // Telemetry goes to a closed local port instead of a cluster name this machine cannot resolve.
  const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${appPort + 0}/otlp-nowhere` };

  // The manifest's own args and env; only the addresses change (port 0 on loopback, the local app).
  const loopback = ["--listen", "127.0.0.1:0", "--control", "127.0.0.1:0"];
  const sc = await startTasklb(
    "sidecar",
    [...(s.container.args as string[]).slice(1), ...loopback, "--app", `http://127.0.0.1:${appPort}`],
    { ...s.env, ...otel },
  );
  t.after(() => sc.child.kill("SIGKILL"));
  const rt = await startTasklb(
    "router",
    [...(r.container.args as string[]).slice(1), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    { ...r.env, ...otel },
  );
  t.after(() => rt.child.kill("SIGKILL"));

  const servedPort = (role: Role, manifestPort: number): number => {
    if (role === "sidecar") {
      if (manifestPort === s.config.control.port) return loggedPort(sc.ready.control);
      if (manifestPort === s.config.listen.port) return loggedPort(sc.ready.listen);
    } else {
      if (manifestPort === r.config.admin.port) return loggedPort(rt.ready.admin);
      if (manifestPort === r.config.listen.port) return loggedPort(rt.ready.listen);
    }
    return assert.fail(`${role}: the manifest probes port ${manifestPort}, which tasklb does not serve`);
  };

  for (const [role, x] of [
    ["sidecar", s],
    ["router", r],
  ] as const) {
    for (const [kind, probe] of probes(x.container)) {
      const port = servedPort(role, containerPort(x.container, probe.httpGet.port)!);
      // Probes carry no token: they must pass without one.
      await until(`http://127.0.0.1:${port}${probe.httpGet.path as string}`, 200).catch((err: Error) => {
        throw new Error(`${x.where}: ${kind}: ${err.message}`);
      });
    }
    const ann = x.pod.annotations;
    const metricsPort = servedPort(role, Number(ann["prometheus.io/port"]));
    const metrics = await get(`http://127.0.0.1:${metricsPort}${ann["prometheus.io/path"]!}`);
    assert.equal(
      metrics.status,
      200,
      `${x.where}: Prometheus scrapes ${ann["prometheus.io/path"]!} without a token`,
    );
    assert.match(metrics.type, /^text\/plain/, `${x.where}: metrics in the Prometheus text format`);
  }

  // Routers poll /v1/load with the shared token from the Secret; without it the report is refused.
  const load = `http://127.0.0.1:${loggedPort(sc.ready.control)}/v1/load`;
  assert.equal((await get(load)).status, 401);
  assert.equal((await get(load, { authorization: `Bearer ${s.env.TASKLB_TOKEN!}` })).status, 200);
  const servers = `http://127.0.0.1:${loggedPort(rt.ready.admin)}/v1/servers`;
  assert.equal((await get(servers, { authorization: `Bearer ${r.env.TASKLB_TOKEN!}` })).status, 200);

  // The image's HEALTHCHECK (Docker/Compose) finds both.
  assert.equal(
    await healthcheck({
      TASKLB_CONTROL: `127.0.0.1:${loggedPort(sc.ready.control)}`,
      TASKLB_ADMIN: "127.0.0.1:1",
    }),
    0,
  );
  assert.equal(
    await healthcheck({
      TASKLB_CONTROL: "127.0.0.1:1",
      TASKLB_ADMIN: `127.0.0.1:${loggedPort(rt.ready.admin)}`,
    }),
    0,
  );

  // SIGTERM (what tini forwards in the container) drains and exits 0 well within the grace period.
  for (const p of [sc, rt]) {
    p.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>(
      (res) => (timer = setTimeout(() => res("no exit within 30 s"), 30_000)),
    );
    const code = await Promise.race([p.exited, timeout]);
    clearTimeout(timer);
    assert.equal(code, 0, "exits 0 after SIGTERM");
  }
});

// ---- the checks check ---------------------------------------------------------------------------

void test("the unknown-field check catches typos in containers, probes and ports", () => {
  const d = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "x", labelz: {} },
    spec: {
      selector: { matchLabels: { a: "b" } },
      template: {
        metadata: { labels: { a: "b" } },
        spec: {
          containers: [
            {
              name: "c",
              image: "i",
              livenesProbe: { httpGet: { path: "/", port: 1 } },
              readinessProbe: { httpGet: { path: "/", port: 1, pathh: "/x" } },
              ports: [{ containerport: 1 }],
              restartPolicy: "Always",
            },
          ],
        },
      },
    },
  };
  assert.deepEqual(unknownFields(d, modelFile("apps/v1", "Deployment"), "d", []).sort(), [
    "d.metadata.labelz",
    "d.spec.template.spec.containers[0].livenesProbe",
    "d.spec.template.spec.containers[0].ports[0].containerport",
    "d.spec.template.spec.containers[0].readinessProbe.httpGet.pathh",
  ]);
  assert.throws(
    () => new Deployment(d as Obj).validate(),
    "and the schema check catches the missing containerPort",
  );
});

void test("a renamed or misspelt setting in a manifest is an error, not silently ignored", () => {
  assert.throws(
    () => assertKnownEnv({ TASKLB_CONTROL_PORT: "9901" }, SIDECAR_OPTIONS, "x"),
    /TASKLB_CONTROL_PORT/,
  );
  assert.throws(
    () => loadSidecarConfig(["--app", "http://127.0.0.1:1", "--control-listen", "0.0.0.0:1"], {}),
    /unknown flag/,
  );
  assert.throws(() => loadRouterConfig([], { TASKLB_ALGORITHM: "least-busy" }), /TASKLB_ALGORITHM/);
});
