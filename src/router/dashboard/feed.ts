/**
 * The one place the dashboard reads the router: a timer samples `getSnapshot()` once per interval
 * (1 s), derives rates over a short window, keeps the last minutes of chart points in a ring
 * buffer and serializes each sample once. Any number of browser tabs and API clients share those
 * samples, so watching the dashboard costs the router one snapshot per second, not one per viewer.
 */
import { monotonicClock, type Clock } from "../../shared/clock.js";
import { buildFrame } from "./frame.js";
import { RingBuffer } from "./ring-buffer.js";
import type { DashboardFrame, HistoryPoint, RouterSnapshot } from "./snapshot.js";

export interface DashboardFeedOptions {
  readonly getSnapshot: () => RouterSnapshot;
  readonly clock?: Clock;
  /** Wall-clock ms for the charts' time axis (display only; rates use `clock`). */
  readonly wallClockMs?: () => number;
  readonly intervalMs?: number;
  /** How much chart history to keep (s). */
  readonly historySeconds?: number;
  /** Rates (req/s, share, error ratio) are computed over about this long (ms). */
  readonly rateWindowMs?: number;
  /** A snapshot that throws skips one sample; this hears about it. */
  readonly onError?: (err: unknown) => void;
}

export type FrameListener = (frame: DashboardFrame, json: string) => void;

export interface DashboardFeed {
  readonly intervalMs: number;
  /** Starts sampling (takes one sample at once). Idempotent. */
  start(): void;
  stop(): void;
  /** Takes one sample now and tells the listeners; the timer calls this. */
  sample(): DashboardFrame | undefined;
  latest(): DashboardFrame | undefined;
  /** The latest frame as JSON (serialized once per sample). */
  latestJson(): string | undefined;
  /** Chart points, oldest first. */
  history(): HistoryPoint[];
  /** `{"intervalMs":…,"points":[…],"latest":frame|null}`, serialized at most once per sample. */
  historyJson(): string;
  /** Returns the unsubscribe function. */
  subscribe(listener: FrameListener): () => void;
}

export function createDashboardFeed(options: DashboardFeedOptions): DashboardFeed {
  const clock = options.clock ?? monotonicClock;
  const wallClockMs = options.wallClockMs ?? (() => Date.now());
  const intervalMs = options.intervalMs ?? 1000;
  const historySeconds = options.historySeconds ?? 300;
  const rateWindowMs = options.rateWindowMs ?? 3000;
  const points = new RingBuffer<HistoryPoint>(Math.max(1, Math.ceil((historySeconds * 1000) / intervalMs)));
  const recent = new RingBuffer<{ at: number; snapshot: RouterSnapshot }>(
    Math.max(1, Math.round(rateWindowMs / intervalMs)),
  );
  const listeners = new Set<FrameListener>();
  let latest: DashboardFrame | undefined;
  let latestJson: string | undefined;
  let historyJson: string | undefined;
  let timer: NodeJS.Timeout | undefined;

  const feed: DashboardFeed = {
    intervalMs,
    start() {
      if (timer !== undefined) return;
      timer = setInterval(() => feed.sample(), intervalMs);
      // Never the reason a router process stays alive.
      timer.unref();
      feed.sample();
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
    sample() {
      let snapshot: RouterSnapshot;
      try {
        snapshot = options.getSnapshot();
      } catch (err) {
        options.onError?.(err);
        return undefined;
      }
      const at = clock.now();
      const base = recent.toArray()[0];
      const frame = buildFrame(snapshot, base?.snapshot, base ? at - base.at : 0, wallClockMs());
      recent.push({ at, snapshot });
      points.push(frame.point);
      latest = frame;
      latestJson = JSON.stringify(frame);
      historyJson = undefined;
      for (const listener of listeners) {
        try {
          listener(frame, latestJson);
        } catch (err) {
          options.onError?.(err);
        }
      }
      return frame;
    },
    latest: () => latest,
    latestJson: () => latestJson,
    history: () => points.toArray(),
    historyJson() {
      historyJson ??= JSON.stringify({ intervalMs, points: points.toArray(), latest: latest ?? null });
      return historyJson;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return feed;
}
