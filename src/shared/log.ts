/**
 * A small structured logger: one JSON object per line on stderr, so logs from the sidecar, the
 * router and the demo can be read by people and shipped by any collector. Off the request path
 * except for errors; never throws.
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
export const LOG_LEVELS = Object.keys(ORDER) as LogLevel[];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(
  level: LogLevel = "info",
  base: Record<string, unknown> = {},
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = ORDER[level];
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    try {
      const rec: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...base };
      if (fields) {
        for (const [k, v] of Object.entries(fields)) rec[k] = v instanceof Error ? errorFields(v) : v;
      }
      write(JSON.stringify(rec) + "\n");
    } catch {
      // Logging must never fail the caller.
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}

function errorFields(err: Error): Record<string, unknown> {
  const code = (err as { code?: unknown }).code;
  return { message: err.message, ...(code !== undefined ? { code } : {}) };
}

export const silentLogger: Logger = createLogger("silent");
