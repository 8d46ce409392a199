/**
 * The router takes one request observer; the dashboard's recorder and telemetry are two. This joins
 * them: every call goes to each, and one failing observer neither stops the other nor reaches the
 * request path. The span id forwarded upstream is the first observer's that has one (telemetry's).
 */
import type {
  RouterPoll,
  RouterRequestEnd,
  RouterRequestObserver,
  RouterRequestScope,
  RouterRequestStart,
} from "../../shared/call-observer.js";

export function combineRequestObservers(
  ...observers: readonly (RouterRequestObserver | undefined)[]
): RouterRequestObserver | undefined {
  const list = observers.filter((o): o is RouterRequestObserver => o !== undefined);
  if (list.length <= 1) return list[0];
  return {
    onPoll(poll: RouterPoll): void {
      for (const o of list) {
        try {
          o.onPoll?.(poll);
        } catch {
          // as below: an observer's failure stays with it
        }
      }
    },
    onRequestStart(req: RouterRequestStart): RouterRequestScope | undefined {
      const scopes: RouterRequestScope[] = [];
      for (const o of list) {
        try {
          const s = o.onRequestStart(req);
          if (s) scopes.push(s);
        } catch {
          // one observer's failure must not cost the others their events
        }
      }
      if (scopes.length === 0) return undefined;
      if (scopes.length === 1) return scopes[0];
      return new CombinedScope(scopes);
    },
  };
}

/** One object per request (methods, not per-request closures): the router calls these on every request. */
class CombinedScope implements RouterRequestScope {
  readonly spanId?: string;
  readonly sampled?: boolean;
  constructor(readonly scopes: readonly RouterRequestScope[]) {
    const traced = scopes.find((s) => s.spanId !== undefined);
    if (traced?.spanId !== undefined) this.spanId = traced.spanId;
    if (traced?.sampled !== undefined) this.sampled = traced.sampled;
  }
  decision(server: string, score: number | undefined): void {
    for (const s of this.scopes) {
      try {
        s.decision(server, score);
      } catch {
        // one observer's failure must not cost the others their events
      }
    }
  }
  failover(server: string, code: string): void {
    for (const s of this.scopes) {
      try {
        s.failover(server, code);
      } catch {
        // as above
      }
    }
  }
  end(end: RouterRequestEnd): void {
    for (const s of this.scopes) {
      try {
        s.end(end);
      } catch {
        // as above
      }
    }
  }
}
