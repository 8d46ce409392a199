/**
 * Readiness of the app: a TCP connect to its port on an unref'd timer. A connect is the cheapest
 * check that says "something accepts connections there" without guessing a health path the app
 * may not have; the data path itself reports anything worse (502/504 with x-tasklb-error).
 */
import { connect } from "node:net";

export interface AppProbe {
  /** Whether the last check reached the app (false until the first check succeeds). */
  readonly reachable: boolean;
  /** Runs one check now; resolves with its result. */
  check(): Promise<boolean>;
  start(): void;
  close(): void;
}

export interface AppProbeOptions {
  readonly host: string;
  readonly port: number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly onChange?: (reachable: boolean) => void;
}

export function createAppProbe(opts: AppProbeOptions): AppProbe {
  let reachable = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<boolean> | undefined;

  const set = (value: boolean): boolean => {
    if (value !== reachable) {
      reachable = value;
      opts.onChange?.(value);
    }
    return value;
  };

  const once = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const socket = connect({ host: opts.host, port: opts.port });
      const done = (ok: boolean) => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(opts.timeoutMs, () => done(false));
      socket.once("connect", () => done(true));
      socket.once("error", () => done(false));
    });

  const check = (): Promise<boolean> => {
    // Overlapping checks would only pile up connections on a slow app: share the one under way.
    running ??= once()
      .then(set)
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  return {
    get reachable() {
      return reachable;
    },
    check,
    start() {
      if (timer) return;
      void check();
      timer = setInterval(() => void check(), opts.intervalMs);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
