/**
 * The peers users would pick instead of tasklb, configured the way a careful operator would:
 * nginx (1 worker, upstream keep-alive) and HAProxy (1 thread, connection reuse), each written to
 * a temporary directory and run in the foreground so we own its PID.
 */
import { mkdirSync, mkdtempSync, writeFileSync, chmodSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, sleep, spawnProc, type Proc } from "./proc.js";

export interface Upstream {
  readonly host: string;
  readonly port: number;
  /** Health-check port (the sidecar's control port, `/readyz`); HAProxy only. */
  readonly checkPort?: number;
}

export interface PeerHandle {
  readonly url: string;
  readonly proc: Proc;
  /** The temporary directory with the peer's configuration (and nginx's temp paths); stop() removes it. */
  readonly dir: string;
  stop(): Promise<void>;
}

/** Options for running a peer under another program (bench:instructions runs it under valgrind). */
export interface PeerLaunch {
  /**
   * A command and its arguments to run the peer under, e.g. `["valgrind", "--tool=callgrind", …]`:
   * the peer's binary and arguments follow. The process (and `proc.pid`) is the wrapper's, which
   * must run the peer in the same process, as valgrind does.
   */
  readonly wrapper?: readonly string[];
  /** How long to wait for the port (default 10 s; a peer under valgrind starts slower). */
  readonly startTimeoutMs?: number;
}

function launch(
  name: string,
  bin: string,
  args: readonly string[],
  cpus: string | undefined,
  opts: PeerLaunch,
): Proc {
  const [cmd, ...pre] = opts.wrapper ?? [];
  return cmd === undefined
    ? spawnProc(name, bin, args, { cpus })
    : spawnProc(name, cmd, [...pre, bin, ...args], { cpus });
}

export async function waitForPort(port: number, timeoutMs = 10_000, proc?: Proc): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (proc && proc.child.exitCode !== null) {
      throw new Error(
        `${proc.name} exited with ${proc.child.exitCode}:\n${proc.output.slice(-10).join("\n")}`,
      );
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(
    `nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms\n${proc?.output.slice(-10).join("\n") ?? ""}`,
  );
}

export type NginxBalance = "round-robin" | "least_conn" | "random two least_conn";

export async function startNginx(
  bin: string,
  opts: {
    upstreams: readonly Upstream[];
    balance?: NginxBalance;
    cpus?: string | undefined;
    /** Passive health: retry the next server on errors and proxy-made 502/503. */
    failover?: boolean;
    /**
     * One process, no master (`master_process off`): the process started is the one that serves,
     * so a tool attached to its PID (callgrind_control) sees the requests. Not for production, as
     * nginx's docs say; its worker code path is the same.
     */
    singleProcess?: boolean;
  } & PeerLaunch,
): Promise<PeerHandle> {
  const dir = mkdtempSync(join(tmpdir(), "tasklb-bench-nginx-"));
  for (const d of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
    mkdirSync(join(dir, d));
    chmodSync(join(dir, d), 0o777);
  }
  chmodSync(dir, 0o755);
  const port = await freePort();
  const balance = opts.balance ?? "round-robin";
  const directive = balance === "round-robin" ? "" : `    ${balance};\n`;
  const fail = opts.failover ? " max_fails=1 fail_timeout=2s" : " max_fails=0";
  const servers = opts.upstreams.map((u) => `    server ${u.host}:${u.port}${fail};`).join("\n");
  const conf = `
daemon off;
master_process ${opts.singleProcess ? "off" : "on"};
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 100000;
  upstream app {
${directive}${servers}
    keepalive 256;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:${port} reuseport;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k;
      proxy_buffers 8 16k;
      proxy_read_timeout 60s;
      ${opts.failover ? "proxy_next_upstream error timeout http_502 http_503;" : "proxy_next_upstream off;"}
    }
  }
}
`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const proc = launch(
    "nginx",
    bin,
    ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr"],
    opts.cpus,
    opts,
  );
  return started(port, proc, dir, opts.startTimeoutMs ?? 10_000);
}

export type HaproxyBalance = "roundrobin" | "leastconn";

export async function startHaproxy(
  bin: string,
  opts: {
    upstreams: readonly Upstream[];
    balance?: HaproxyBalance;
    cpus?: string | undefined;
    /** Active health checks on each upstream's `checkPort` (`GET /readyz`) and redispatch on failure. */
    healthCheck?: boolean;
  } & PeerLaunch,
): Promise<PeerHandle> {
  const dir = mkdtempSync(join(tmpdir(), "tasklb-bench-haproxy-"));
  const port = await freePort();
  const servers = opts.upstreams
    .map((u, i) => {
      const check =
        opts.healthCheck && u.checkPort ? ` check port ${u.checkPort} inter 500 fall 2 rise 2` : "";
      return `  server s${i} ${u.host}:${u.port} maxconn 4000${check}`;
    })
    .join("\n");
  const conf = `
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  http-reuse always
  option http-keep-alive
  ${opts.healthCheck ? "retries 2\n  option redispatch\n  retry-on conn-failure empty-response 502 503" : ""}
frontend fe
  bind 127.0.0.1:${port}
  default_backend be
backend be
  balance ${opts.balance ?? "roundrobin"}
  ${opts.healthCheck ? "option httpchk GET /readyz" : ""}
${servers}
`;
  writeFileSync(join(dir, "haproxy.cfg"), conf);
  const proc = launch("haproxy", bin, ["-f", join(dir, "haproxy.cfg"), "-db"], opts.cpus, opts);
  return started(port, proc, dir, opts.startTimeoutMs ?? 10_000);
}

/** Waits for the peer's port; its handle's stop() (or a failed start) also removes its directory. */
async function started(port: number, proc: Proc, dir: string, timeoutMs: number): Promise<PeerHandle> {
  const stop = async (): Promise<void> => {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  await waitForPort(port, timeoutMs, proc).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  return { url: `http://127.0.0.1:${port}`, proc, dir, stop };
}
