/**
 * The real Prometheus for tests: Debian's `prometheus` binary started on 127.0.0.1 with its own
 * config and a temporary data directory, scraping the targets given every second; and
 * `promtool check metrics` for exposition-format checks. Both fail with a clear message when the
 * binaries are missing (CI installs them with scripts/install-test-deps.sh).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const INSTALL_HINT =
  "install it with scripts/install-test-deps.sh (apt-get install -y --no-install-recommends prometheus)";

function requireBinary(name: string): void {
  const r = spawnSync(name, ["--version"], { stdio: "ignore" });
  if (r.error)
    throw new Error(`${name} is not installed (${(r.error as NodeJS.ErrnoException).code}): ${INSTALL_HINT}`);
}

/** Runs `promtool check metrics` on an exposition text; returns its complaints (empty when clean). */
export function promtoolCheckMetrics(text: string): { ok: boolean; output: string } {
  requireBinary("promtool");
  const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8", timeout: 20_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}`.trim() };
}

export interface ScrapeTarget {
  readonly job: string;
  /** host:port of the control/admin server. */
  readonly address: string;
  readonly metricsPath?: string;
  readonly bearerToken?: string;
}

export interface PrometheusServer {
  readonly url: string;
  /** Instant query; returns the result vector (empty until the first scrapes landed). */
  query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Polls `expr` (bounded) until `predicate` accepts the result; returns the last result. */
  waitFor(
    expr: string,
    predicate: (r: { metric: Record<string, string>; value: [number, string] }[]) => boolean,
    timeoutMs?: number,
  ): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function config(targets: readonly ScrapeTarget[]): string {
  // YAML is a superset of JSON: no YAML writer needed.
  return JSON.stringify({
    global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
    scrape_configs: targets.map((t) => ({
      job_name: t.job,
      metrics_path: t.metricsPath ?? "/metrics",
      static_configs: [{ targets: [t.address] }],
      ...(t.bearerToken !== undefined
        ? { authorization: { type: "Bearer", credentials: t.bearerToken } }
        : {}),
    })),
  });
}

export async function startPrometheus(targets: readonly ScrapeTarget[]): Promise<PrometheusServer> {
  requireBinary("prometheus");
  const dir = mkdtempSync(join(tmpdir(), "tasklb-prom-"));
  const configFile = join(dir, "prometheus.yml");
  writeFileSync(configFile, config(targets));

  let child: ChildProcess | undefined;
  let url = "";
  let stderr = "";
  // The free port can be taken between probing and binding: retry a few times.
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const c = spawn(
      "prometheus",
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    c.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const exited = new Promise<"exited">((resolve) => c.once("exit", () => resolve("exited")));
    const deadline = performance.now() + 15_000;
    let ready = false;
    while (performance.now() < deadline) {
      const r = await Promise.race([
        exited,
        fetch(`${url}/-/ready`).then(
          (res) => res.ok,
          () => false,
        ),
      ]);
      if (r === "exited") break;
      if (r) {
        ready = true;
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    if (ready) child = c;
    else {
      c.kill("SIGKILL");
      await exited;
    }
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`prometheus did not become ready:\n${stderr}`);
  }
  const proc = child;

  const query: PrometheusServer["query"] = async (expr) => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as {
      status: string;
      error?: string;
      data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== "success") throw new Error(`query ${expr} failed: ${body.error}`);
    return body.data?.result ?? [];
  };

  return {
    url,
    query,
    async waitFor(expr, predicate, timeoutMs = 20_000) {
      const deadline = performance.now() + timeoutMs;
      let last = await query(expr);
      while (!predicate(last) && performance.now() < deadline) {
        await new Promise((res) => setTimeout(res, 250));
        last = await query(expr);
      }
      return last;
    },
    async close() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
