/**
 * The router, composed: pools (membership from the static list, DNS and registrations), one poller
 * per pool, one undici Pool per server for data traffic, the data-port request handler and the
 * admin API. `createRouter` builds everything and binds nothing; `listen()` starts polling and
 * binds the two ports (only main.ts and tests call it); `drain()` is the graceful SIGTERM path.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Pool as UndiciPool, type Dispatcher } from "undici";
import type { RouterRequestObserver } from "../shared/call-observer.js";
import { monotonicClock, type Clock } from "../shared/clock.js";
import type { HostPort } from "../shared/config.js";
import { createLogger, type Logger } from "../shared/log.js";
import { createAdminHandler, type AdminRoute } from "./admin.js";
import { createBalancer } from "./balancers/index.js";
import type { PoolConfig, RouterConfig } from "./config.js";
import { createDnsWatcher, type DnsWatcher, type LookupAll } from "./membership/dns.js";
import { Registry } from "./membership/registration.js";
import { createPoller, type Poller } from "./poller.js";
import { Pool, type Member, type PoolEvent } from "./pool.js";
import { createRequestHandler } from "./request-handler.js";
import { serversSnapshot, type ServersSnapshot } from "./servers-snapshot.js";

export interface RouterDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly observer?: RouterRequestObserver;
  /** Uniform [0, 1) for the balancers and the easing lottery. */
  readonly random?: () => number;
  /** DNS lookup (all addresses); tests inject one. */
  readonly lookup?: LookupAll;
  /** Extra admin routes (metrics, dashboard), tried in order after the built-in ones. */
  readonly adminRoutes?: readonly AdminRoute[];
  /** Notified of servers joining, leaving and changing state (dashboard events). */
  readonly onPoolEvent?: (event: PoolEvent) => void;
}

export interface RouterAddresses {
  /** `host:port` the data port is bound to. */
  readonly listen: string;
  readonly admin: string;
}

export interface Router {
  readonly config: RouterConfig;
  readonly pools: readonly { readonly config: PoolConfig; readonly pool: Pool }[];
  /** Starts membership and polling, binds both ports. */
  listen(): Promise<RouterAddresses>;
  /** Bound addresses (after listen). */
  readonly addresses: RouterAddresses | undefined;
  /** Graceful stop: readiness fails, no new connections, in-flight requests get drainGraceMs, then close(). */
  drain(): Promise<void>;
  /** Immediate stop of everything. */
  close(): Promise<void>;
  readonly draining: boolean;
  /** Requests in flight on the data port. */
  readonly inFlight: number;
  snapshot(): ServersSnapshot;
  /** The data-port and admin request listeners, for tests that bring their own server. */
  readonly handleRequest: (req: IncomingMessage, res: ServerResponse) => void;
  readonly handleAdmin: (req: IncomingMessage, res: ServerResponse) => void;
}

function formatAddress(a: AddressInfo): string {
  return a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function listenOn(server: Server, hp: HostPort): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(hp.port, hp.host, () => {
      server.off("error", reject);
      resolve(formatAddress(server.address() as AddressInfo));
    });
  });
}

export function createRouter(config: RouterConfig, deps: RouterDeps = {}): Router {
  const clock = deps.clock ?? monotonicClock;
  const logger = deps.logger ?? createLogger(config.logLevel, { role: "router" });
  const random = deps.random ?? Math.random;
  const startedAt = clock.now();
  const pseudonym = `tasklb-router-${randomBytes(3).toString("hex")}`;
  const via = `1.1 ${pseudonym}`;
  const connectTimeoutMs = Math.min(5000, config.upstreamTimeoutMs);

  let draining = false;
  let started = false;
  let closed = false;
  let inFlight = 0;
  let addresses: RouterAddresses | undefined;
  let drainWaiter: (() => void) | undefined;

  // Data connections per server, shared by pools that hold the same server.
  const dispatchers = new Map<string, { d: UndiciPool; users: number }>();
  const acquire = (m: Member): void => {
    const e = dispatchers.get(m.dataUrl);
    if (e) {
      e.users++;
      return;
    }
    dispatchers.set(m.dataUrl, {
      users: 1,
      d: new UndiciPool(m.dataUrl, {
        // Below the sidecar's keep-alive, so we never send on a socket it is closing.
        keepAliveTimeout: config.upstreamKeepaliveMs,
        keepAliveMaxTimeout: config.upstreamKeepaliveMs,
        headersTimeout: config.upstreamTimeoutMs,
        bodyTimeout: config.upstreamTimeoutMs,
        connectTimeout: connectTimeoutMs,
      }),
    });
  };
  const release = (dataUrl: string): void => {
    const e = dispatchers.get(dataUrl);
    if (!e || --e.users > 0) return;
    dispatchers.delete(dataUrl);
    // close() lets requests in flight finish.
    e.d.close().catch(() => undefined);
  };
  const dispatcher = (m: Member): Dispatcher => {
    let e = dispatchers.get(m.dataUrl);
    if (!e) {
      acquire(m);
      e = dispatchers.get(m.dataUrl)!;
    }
    return e.d;
  };

  const pollers = new Map<string, Poller>();
  const pools = config.pools.map((pc) => {
    const balancer = createBalancer(pc.algorithm, { clock, random, easeInMs: config.easeInMs });
    const pool: Pool = new Pool(
      {
        name: pc.name,
        easeInMs: config.easeInMs,
        maxMisses: config.maxMisses,
        minRateIntervalSeconds: Math.min(0.05, config.pollIntervalMs / 2000),
      },
      { balancer, random, onEvent: (e) => onPoolEvent(e) },
    );
    const poller = createPoller(
      { pollIntervalMs: config.pollIntervalMs, pollTimeoutMs: config.pollTimeoutMs, token: config.token },
      {
        clock,
        onSuccess: (id, report, now) => pool.onPollSuccess(id, report, now),
        onFailure: (id, reason, now) => pool.onPollFailure(id, reason, now),
        onPolled: (id, durationMs, error) => deps.observer?.onPoll?.({ server: id, durationMs, error }),
        // A piggybacked report makes a poll redundant, unless the server is out (only a poll brings
        // it back) or the report shows a new epoch (a restart: the poll puts it back to easing).
        heardAt: (id) => {
          const m = pool.get(id);
          if (m === undefined || m.state === "out" || m.lastReport?.epoch !== m.stats.lastEpoch)
            return undefined;
          return m.lastPiggybackAtMs;
        },
      },
    );
    pollers.set(pc.name, poller);
    return { config: pc, pool };
  });
  // The default pool matches everything, so it is tried last.
  const matchOrder = [...pools.slice(1), pools[0]!];
  const poolByName = new Map(pools.map((p) => [p.pool.name, p.pool]));

  function onPoolEvent(e: PoolEvent): void {
    const poller = pollers.get(e.pool);
    if (e.type === "added") {
      acquire(e.member);
      // Before listen() the first poll happens there, all at once; afterwards right away.
      if (started) void poller?.add({ id: e.member.id, controlUrl: e.member.controlUrl });
      logger.info("server added", { pool: e.pool, dataUrl: e.member.dataUrl, source: [...e.member.sources] });
    } else if (e.type === "removed") {
      poller?.remove(e.member.id);
      release(e.member.dataUrl);
      logger.info("server removed", { pool: e.pool, dataUrl: e.member.dataUrl });
    } else if (e.type === "state") {
      const level = e.to === "out" ? "warn" : "info";
      logger[level]("server state", {
        pool: e.pool,
        dataUrl: e.member.dataUrl,
        from: e.from,
        to: e.to,
        reason: e.reason,
      });
    }
    try {
      deps.onPoolEvent?.(e);
    } catch {
      // observers must not break membership
    }
  }

  const registry = new Registry(
    config.registrationTtlMs,
    {
      onAdd: (reg) => poolByName.get(reg.pool)?.add(reg.address, "registration", clock.now()),
      onRemove: (pool, dataUrl) => poolByName.get(pool)?.removeSource(dataUrl, "registration"),
    },
    config.maxRegistrations,
  );
  let expiryTimer: NodeJS.Timeout | undefined;

  const dnsWatchers: DnsWatcher[] = pools.map(({ config: pc, pool }) =>
    createDnsWatcher(
      { targets: pc.dns, intervalMs: config.dnsIntervalMs, sidecarControlPort: config.sidecarControlPort },
      {
        ...(deps.lookup ? { lookup: deps.lookup } : {}),
        onAdd: (addr) => pool.add(addr, "dns", clock.now()),
        onRemove: (dataUrl) => pool.removeSource(dataUrl, "dns"),
        onError: (name, err) =>
          logger.warn("dns lookup failed; keeping the last good set", {
            pool: pc.name,
            name,
            err: err as Error,
          }),
      },
    ),
  );

  const snapshot = (): ServersSnapshot =>
    serversSnapshot(pools, clock.now(), {
      mode: config.mode,
      draining,
      uptimeSeconds: (clock.now() - startedAt) / 1000,
    });

  const handler = createRequestHandler({
    mode: config.mode,
    retries: config.retries,
    trustForwarded: config.trustForwarded,
    via,
    pseudonym,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
    connectTimeoutMs,
    loadAsk: config.token !== undefined && config.token !== "" ? config.token : "1",
    clock,
    logger,
    observer: deps.observer,
    pools: matchOrder,
    dispatcher,
    isDraining: () => draining,
    onRequestStart: () => {
      inFlight++;
    },
    onRequestEnd: () => {
      inFlight--;
      if (inFlight === 0) drainWaiter?.();
    },
  });

  const handleAdmin = createAdminHandler({
    token: config.token,
    via,
    clock,
    logger,
    sidecarControlPort: config.sidecarControlPort,
    pools: matchOrder,
    registry,
    isDraining: () => draining,
    snapshot,
    routes: deps.adminRoutes ?? [],
  });

  const serverOptions = {
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: 0,
    maxHeaderSize: config.maxHeaderSize,
    // Node checks these timeouts only this often (30 s by default, see FACTS.md).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.headersTimeoutMs / 4))),
  };
  const dataServer = createServer(serverOptions, handler.onRequest);
  dataServer.on("upgrade", handler.onUpgrade);
  dataServer.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? "408 Request Timeout"
          : "400 Bad Request";
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  const adminServer = createServer({ ...serverOptions, maxHeaderSize: 16_384 }, handleAdmin);

  async function start(): Promise<void> {
    const now = clock.now();
    for (const { config: pc, pool } of pools) {
      for (const s of pc.servers) pool.add(s, "static", now);
    }
    await Promise.all(dnsWatchers.map((w) => w.resolveNow()));
    // Poll every known server once before taking traffic, so the router starts with a pool in rotation.
    const first: Promise<void>[] = [];
    for (const { pool } of pools) {
      const poller = pollers.get(pool.name)!;
      for (const m of pool.members()) {
        first.push(poller.add({ id: m.id, controlUrl: m.controlUrl }));
      }
    }
    started = true;
    await Promise.all(first);
    for (const w of dnsWatchers) w.start();
    expiryTimer = setInterval(
      () => registry.expire(clock.now()),
      Math.max(50, Math.min(1000, config.registrationTtlMs / 4)),
    );
    expiryTimer.unref();
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    draining = true;
    if (expiryTimer) clearInterval(expiryTimer);
    for (const w of dnsWatchers) w.close();
    await Promise.all([...pollers.values()].map((p) => p.close()));
    dataServer.closeAllConnections();
    adminServer.closeAllConnections();
    handler.closeUpgrades();
    await Promise.all([closeServer(dataServer), closeServer(adminServer)]);
    await Promise.all([...dispatchers.values()].map((e) => e.d.destroy().catch(() => undefined)));
    dispatchers.clear();
  }

  async function drain(): Promise<void> {
    if (closed) return;
    if (!draining) {
      draining = true;
      logger.info("draining", { inFlight, graceMs: config.drainGraceMs });
    }
    // Stop accepting; idle keep-alive connections close now, busy ones after their response.
    const closing = closeServer(dataServer);
    dataServer.closeIdleConnections();
    if (inFlight > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, config.drainGraceMs);
        drainWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    drainWaiter = undefined;
    if (inFlight > 0) logger.warn("drain grace over; closing requests still in flight", { inFlight });
    dataServer.closeAllConnections();
    await closing;
    await close();
  }

  return {
    config,
    pools,
    async listen() {
      if (addresses) return addresses;
      await start();
      const [l, a] = await Promise.all([
        listenOn(dataServer, config.listen),
        listenOn(adminServer, config.admin),
      ]);
      addresses = { listen: l, admin: a };
      return addresses;
    },
    get addresses() {
      return addresses;
    },
    drain,
    close,
    get draining() {
      return draining;
    },
    get inFlight() {
      return inFlight;
    },
    snapshot,
    handleRequest: handler.onRequest,
    handleAdmin,
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
  });
}
