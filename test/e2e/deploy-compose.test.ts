/**
 * deploy/compose, checked offline (no Docker engine here): compose.yaml parses; every service,
 * network namespace, file and port it or the Prometheus and Collector configs refer to exists;
 * and every tasklb command line in it is parsed by the real `loadSidecarConfig` /
 * `loadRouterConfig`, so a renamed flag breaks this test instead of `docker compose up`.
 */
import { beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { loadSidecarConfig, SIDECAR_OPTIONS, type SidecarConfig } from "../../src/sidecar/config.js";
import { loadRouterConfig, ROUTER_OPTIONS, type RouterConfig } from "../../src/router/config.js";
import { envName, type OptionSpec } from "../../src/shared/config.js";
import { readTelemetrySettings } from "../../src/telemetry/otel-env.js";
import { assertYoungGenerationCapped, semiSpaceMiB } from "../helpers/node-options.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "deploy", "compose", "compose.yaml"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("deploy/compose not found above " + fileURLToPath(import.meta.url));
    dir = up;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML, walked by many checks
type Obj = Record<string, any>;
const ROOT = repoRoot();
const DIR = join(ROOT, "deploy", "compose");
const COMPOSE = parse(readFileSync(join(DIR, "compose.yaml"), "utf8"), { merge: true }) as Obj;
const SERVICES = COMPOSE.services as Record<string, Obj>;
const PROMETHEUS = parse(readFileSync(join(DIR, "prometheus.yml"), "utf8")) as Obj;
const COLLECTOR = parse(readFileSync(join(DIR, "otel-collector.yaml"), "utf8")) as Obj;

/** Compose interpolation with an empty shell environment: `${X:-default}` gives the default. */
function interpolate(v: unknown): string {
  return String(v).replace(
    /\$\{(\w+)(?::?-([^}]*))?\}/g,
    (_w, _name: string, dflt: string | undefined) => dflt ?? "",
  );
}

function environment(svc: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  const e = svc.environment ?? {};
  if (Array.isArray(e)) {
    for (const item of e as string[]) {
      const eq = item.indexOf("=");
      env[item.slice(0, eq)] = interpolate(item.slice(eq + 1));
    }
  } else {
    for (const [k, v] of Object.entries(e as Obj)) env[k] = interpolate(v);
  }
  return env;
}

const dependsOn = (svc: Obj): string[] =>
  svc.depends_on === undefined
    ? []
    : Array.isArray(svc.depends_on)
      ? svc.depends_on
      : Object.keys(svc.depends_on);

/** The service whose network namespace this one lives in. */
const netOwner = (name: string): string => {
  const mode = SERVICES[name]!.network_mode as string | undefined;
  return mode?.startsWith("service:") ? mode.slice("service:".length) : name;
};

const isTasklb = (svc: Obj): boolean => /^tasklb(:|$)/.test(String(svc.image ?? ""));

function assertKnownEnv(env: Record<string, string>, specs: readonly OptionSpec[], where: string): void {
  const known = new Set([...specs.map(envName), "TASKLB_CONFIG"]);
  for (const k of Object.keys(env))
    if (k.startsWith("TASKLB_")) assert.ok(known.has(k), `${where}: ${k} is not a setting`);
}

interface Parsed {
  readonly name: string;
  readonly env: Record<string, string>;
}
const sidecars: (Parsed & { config: SidecarConfig })[] = [];
const routers: (Parsed & { config: RouterConfig })[] = [];
let PORTS = new Map<string, Map<number, string>>();
let parseError: Error | undefined;

/** Runs every tasklb command line through the real loaders; a failure fails each test with its message. */
function parseTasklbServices(): void {
  for (const [name, svc] of Object.entries(SERVICES)) {
    if (!isTasklb(svc)) continue;
    const cmd = (svc.command as unknown[]).map(interpolate);
    const env = environment(svc);
    if (cmd[0] === "sidecar") {
      assertKnownEnv(env, SIDECAR_OPTIONS, name);
      sidecars.push({ name, env, config: loadSidecarConfig(cmd.slice(1), env) });
    } else if (cmd[0] === "router") {
      assertKnownEnv(env, ROUTER_OPTIONS, name);
      routers.push({ name, env, config: loadRouterConfig(cmd.slice(1), env) });
    } else {
      assert.fail(`${name}: a tasklb service's command starts with sidecar or router, got ${cmd[0]}`);
    }
  }
  PORTS = listeningPorts();
}
try {
  parseTasklbServices();
} catch (err) {
  parseError = err instanceof Error ? err : new Error(JSON.stringify(err));
}
beforeEach(() => {
  if (parseError) throw parseError;
});

/** Ports something listens on, per network namespace (the owner service's name). */
function listeningPorts(): Map<string, Map<number, string>> {
  const ports = new Map<string, Map<number, string>>();
  const add = (svc: string, port: number, what: string) => {
    const owner = netOwner(svc);
    const m = ports.get(owner) ?? new Map<number, string>();
    assert.ok(
      !m.has(port),
      `${svc}: port ${port} is already taken by ${m.get(port)} in ${owner}'s network namespace`,
    );
    m.set(port, what);
    ports.set(owner, m);
  };
  for (const s of sidecars) {
    add(s.name, s.config.listen.port, `${s.name} data`);
    add(s.name, s.config.control.port, `${s.name} control`);
  }
  for (const r of routers) {
    add(r.name, r.config.listen.port, `${r.name} data`);
    add(r.name, r.config.admin.port, `${r.name} admin`);
  }
  for (const [name, svc] of Object.entries(SERVICES)) {
    const image = String(svc.image ?? "");
    if (image.startsWith("mccutchen/go-httpbin:"))
      add(name, Number(environment(svc).PORT ?? 8080), `${name} app`);
    if (image.startsWith("jaegertracing/jaeger:"))
      for (const p of [4317, 4318, 16686]) add(name, p, `${name} jaeger`);
    if (image.startsWith("prom/prometheus:")) add(name, 9090, `${name} prometheus`);
    if (image.startsWith("otel/opentelemetry-collector")) {
      for (const proto of Object.values(COLLECTOR.receivers.otlp.protocols as Obj))
        add(name, Number(String(proto.endpoint).split(":").pop()), `${name} otlp`);
      add(name, Number(String(COLLECTOR.exporters.prometheus.endpoint).split(":").pop()), `${name} metrics`);
    }
  }
  return ports;
}

function assertListening(host: string, port: number, where: string): string {
  assert.ok(SERVICES[host], `${where}: ${host} is not a service`);
  const what = PORTS.get(netOwner(host))?.get(port);
  assert.ok(what, `${where}: nothing listens on ${host}:${port}`);
  return what;
}

void test("compose.yaml parses and runs three apps each with a sidecar, a router, a Collector, Jaeger and Prometheus", () => {
  assert.ok(sidecars.length >= 3, "three or more sidecars");
  assert.ok(routers.length >= 1, "a router");
  const images = Object.values(SERVICES).map((s) => String(s.image ?? ""));
  for (const want of ["otel/opentelemetry-collector-contrib:", "jaegertracing/jaeger:", "prom/prometheus:"]) {
    assert.ok(
      images.some((i) => i.startsWith(want)),
      `runs ${want}`,
    );
  }
  for (const [name, svc] of Object.entries(SERVICES)) {
    assert.match(String(svc.image), /:[\w.-]+$/, `${name}: the image has a tag`);
    assert.ok(!String(svc.image).endsWith(":latest"), `${name}: the image is pinned, not latest`);
  }
});

void test("the sidecars run with a capped young generation that Node accepts, the router with V8's default", () => {
  for (const s of sidecars) assertYoungGenerationCapped(s.env.NODE_OPTIONS ?? "", s.name);
  for (const r of routers) assert.equal(semiSpaceMiB(r.env.NODE_OPTIONS), undefined, r.name);
});

void test("every depends_on, network_mode and mounted file refers to something that exists", () => {
  for (const [name, svc] of Object.entries(SERVICES)) {
    for (const dep of dependsOn(svc))
      assert.ok(SERVICES[dep], `${name}: depends_on ${dep}, which is not a service`);
    const mode = svc.network_mode as string | undefined;
    if (mode?.startsWith("service:")) {
      const owner = mode.slice("service:".length);
      assert.ok(SERVICES[owner], `${name}: network_mode ${mode} names no service`);
      assert.equal(
        svc.ports,
        undefined,
        `${name}: ports belong to ${owner}, which owns the network namespace`,
      );
    }
    for (const v of (svc.volumes ?? []) as string[]) {
      const src = v.split(":")[0]!;
      if (src.startsWith("."))
        assert.ok(existsSync(resolve(DIR, src)), `${name}: mounts ${src}, which does not exist`);
    }
    if (svc.build) {
      const ctx = resolve(DIR, typeof svc.build === "string" ? svc.build : svc.build.context);
      assert.ok(existsSync(join(ctx, "Dockerfile")), `${name}: build context ${ctx} has the Dockerfile`);
    }
    if (typeof svc.depends_on === "object" && !Array.isArray(svc.depends_on)) {
      for (const [dep, cond] of Object.entries(svc.depends_on as Obj)) {
        if (cond.condition === "service_healthy") {
          assert.ok(
            SERVICES[dep]!.healthcheck || isTasklb(SERVICES[dep]!),
            `${name}: waits for ${dep} to be healthy, which has no health check`,
          );
        }
      }
    }
  }
});

void test("the sidecars reach their app on loopback, register with a router and are reachable where they advertise", () => {
  for (const s of sidecars) {
    const owner = netOwner(s.name);
    assert.notEqual(
      owner,
      s.name,
      `${s.name}: shares its app's network namespace (network_mode: service:app)`,
    );
    assert.ok(["127.0.0.1", "localhost"].includes(s.config.app.hostname), `${s.name}: --app on loopback`);
    assert.match(
      assertListening(owner, Number(s.config.app.port), s.name),
      /app$/,
      `${s.name}: --app is the app`,
    );
    assert.equal(
      s.config.advertiseHost,
      owner,
      `${s.name}: advertises the name that reaches its network namespace`,
    );
    assert.ok(
      s.config.router.length > 0 || routers.some((r) => r.config.pools.some((p) => p.servers.length > 0)),
      `${s.name}: a router learns of it`,
    );
    for (const u of s.config.router) {
      assert.match(
        assertListening(u.hostname, Number(u.port || 80), s.name),
        /admin$/,
        `${s.name}: --router is a router's admin port`,
      );
    }
    assert.equal(s.config.token, routers[0]!.config.token, `${s.name}: the same token as the router`);
  }
  for (const r of routers) {
    for (const pool of r.config.pools) {
      for (const srv of pool.servers) {
        const data = new URL(srv.dataUrl);
        assert.match(
          assertListening(data.hostname, Number(data.port), r.name),
          /data$/,
          `${r.name}: --server ${srv.dataUrl}`,
        );
        const control = new URL(srv.controlUrl);
        assert.match(
          assertListening(control.hostname, Number(control.port), r.name),
          /control$/,
          `${r.name}: control of ${srv.dataUrl}`,
        );
      }
    }
  }
});

void test("published ports, the image's HEALTHCHECK ports and OTLP endpoints match what the services listen on", () => {
  for (const [name, svc] of Object.entries(SERVICES)) {
    for (const p of (svc.ports ?? []) as string[]) {
      const container = Number(String(p).split(":").pop());
      assertListening(name, container, `${name} publishes ${p}`);
    }
  }
  // The image's HEALTHCHECK reads TASKLB_CONTROL / TASKLB_ADMIN (or 9901 / 9900): a port given as a flag must agree.
  const healthPort = (env: Record<string, string>, key: string, dflt: number) =>
    Number(env[key]?.split(":").pop() ?? dflt);
  for (const s of sidecars)
    assert.equal(
      healthPort(s.env, "TASKLB_CONTROL", 9901),
      s.config.control.port,
      `${s.name}: HEALTHCHECK probes the control port`,
    );
  for (const r of routers)
    assert.equal(
      healthPort(r.env, "TASKLB_ADMIN", 9900),
      r.config.admin.port,
      `${r.name}: HEALTHCHECK probes the admin port`,
    );
  for (const x of [...sidecars, ...routers]) {
    const otel = readTelemetrySettings(x.env, "tasklb");
    assert.deepEqual(otel.warnings, [], `${x.name}: OTEL_* settings are understood`);
    assert.equal(otel.traces.exporter, "otlp", `${x.name}: traces are exported`);
    const u = new URL(otel.traces.otlp!.url);
    assert.match(
      assertListening(u.hostname, Number(u.port), x.name),
      /otlp$/,
      `${x.name}: OTLP endpoint is the Collector`,
    );
    assert.equal(
      otel.metrics.otlp,
      undefined,
      `${x.name}: metrics are scraped, not also pushed (no duplicate series)`,
    );
    assert.equal(otel.metrics.prometheus, true, `${x.name}: /metrics is served for Prometheus`);
  }
});

void test("Prometheus scrapes every sidecar, the router and the Collector on ports that serve metrics", () => {
  const targets = new Map<string, string>();
  for (const job of PROMETHEUS.scrape_configs as Obj[]) {
    for (const sc of job.static_configs as Obj[]) {
      for (const t of sc.targets as string[]) {
        const [host, port] = t.split(":");
        const what = assertListening(host!, Number(port), `prometheus job ${job.job_name as string}`);
        assert.match(
          what,
          /control$|admin$|metrics$/,
          `prometheus job ${job.job_name as string}: ${t} is ${what}, not a metrics port`,
        );
        if (/control$|admin$/.test(what)) assert.equal(job.metrics_path ?? "/metrics", "/metrics");
        targets.set(t, what);
      }
    }
  }
  for (const s of sidecars)
    assert.ok(targets.has(`${netOwner(s.name)}:${s.config.control.port}`), `${s.name} is scraped`);
  for (const r of routers) assert.ok(targets.has(`${r.name}:${r.config.admin.port}`), `${r.name} is scraped`);
});

void test("the Collector config defines every component its pipelines use and exports traces to Jaeger", () => {
  for (const [pipeline, p] of Object.entries(COLLECTOR.service.pipelines as Obj)) {
    for (const kind of ["receivers", "processors", "exporters"] as const) {
      for (const id of (p[kind] ?? []) as string[]) {
        assert.ok(COLLECTOR[kind]?.[id] !== undefined, `pipeline ${pipeline}: ${kind} ${id} is not defined`);
      }
    }
  }
  const traces = (COLLECTOR.service.pipelines.traces.exporters as string[]).map(
    (id) => COLLECTOR.exporters[id] as Obj,
  );
  const jaeger = traces.find((e) => /jaeger/.test(String(e.endpoint)));
  assert.ok(jaeger, "traces go to Jaeger");
  const [host, port] = String(jaeger.endpoint)
    .replace(/^\w+:\/\//, "")
    .split(":");
  assert.match(assertListening(host!, Number(port), "collector"), /jaeger$/);
});
