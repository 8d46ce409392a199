/**
 * Self-registration with routers (`--router`): POST `{dataUrl, controlUrl}` to each router's
 * `/v1/register` now and every `registerIntervalMs` — routers keep registrations only for a TTL,
 * so a restarted router learns this sidecar again within one interval — and DELETE on drain.
 * Failures are logged (once, then at most once a minute per router) and never fatal: the data path
 * works without any router, and a static `--server` list or DNS can still find this sidecar.
 */
import { request } from "undici";
import { authorizationHeader } from "../shared/auth.js";
import { monotonicClock, type Clock } from "../shared/clock.js";
import type { Logger } from "../shared/log.js";

export interface RegistrationOptions {
  readonly routers: readonly URL[];
  readonly token: string | undefined;
  readonly dataUrl: string;
  readonly controlUrl: string;
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Per request (headers and body). */
  readonly timeoutMs?: number;
  readonly clock?: Clock;
}

export interface Registration {
  /** Registers now and then on the interval. */
  start(): void;
  /** One registration round with every router; resolves when all answered or failed. */
  registerNow(): Promise<void>;
  /** Stops re-registering and deregisters from every router (bounded by the timeout). */
  stop(): Promise<void>;
}

const FAILURE_LOG_EVERY_MS = 60_000;

export function registerUrl(router: URL): string {
  const base = router.href.endsWith("/") ? router.href : router.href + "/";
  return new URL("v1/register", base).href;
}

export function createRegistration(opts: RegistrationOptions): Registration {
  const clock = opts.clock ?? monotonicClock;
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const body = JSON.stringify({ dataUrl: opts.dataUrl, controlUrl: opts.controlUrl });
  const headers = { "content-type": "application/json", ...authorizationHeader(opts.token) };
  // Per router: failing since, and when the last failure was logged.
  const failing = new Map<string, { since: number; loggedAt: number }>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const send = async (router: URL, method: "POST" | "DELETE"): Promise<void> => {
    const url = registerUrl(router);
    try {
      const res = await request(url, {
        method,
        headers,
        body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await res.body.dump();
      if (res.statusCode >= 300) throw new Error(`router answered ${res.statusCode}`);
      const was = failing.get(url);
      if (was) {
        failing.delete(url);
        opts.logger.info("registration recovered", { router: url, method });
      } else if (method === "POST") {
        opts.logger.debug("registered", { router: url });
      }
    } catch (err) {
      const now = clock.now();
      const was = failing.get(url);
      if (!was || now - was.loggedAt >= FAILURE_LOG_EVERY_MS) {
        opts.logger.warn(method === "POST" ? "registration failed" : "deregistration failed", {
          router: url,
          error: err instanceof Error ? err : String(err),
          failingForMs: was ? Math.round(now - was.since) : 0,
        });
        failing.set(url, { since: was?.since ?? now, loggedAt: now });
      }
    }
  };

  const round = (method: "POST" | "DELETE") =>
    Promise.all(opts.routers.map((r) => send(r, method))).then(() => undefined);

  return {
    start() {
      if (timer || stopped || opts.routers.length === 0) return;
      void round("POST");
      timer = setInterval(() => void round("POST"), opts.intervalMs);
      timer.unref();
    },
    registerNow: () => round("POST"),
    async stop() {
      if (stopped) return;
      stopped = true;
      if (timer) clearInterval(timer);
      timer = undefined;
      if (opts.routers.length > 0) await round("DELETE");
    },
  };
}
