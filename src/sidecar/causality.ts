/**
 * The nesting rule — the heart of tasklb (see DESIGN.md). Every call carries a causality ID (the
 * W3C trace-id). A call is *nested* when, at the moment it ends, another call with the same ID that
 * started before it is still in flight here: the enclosing call's duration already contains it, so
 * its time must not be added twice. Nested calls are counted; only top-level calls add their time.
 * Siblings with no enclosing call are each top-level.
 *
 * Per ID the calls in flight are kept in start order, so "an earlier call is still in flight" is
 * simply "this call is not the oldest one left", and the oldest call of each ID is exactly the set
 * of calls that are top-level *right now* (the live figures). Ends are O(1).
 *
 * Memory is bounded whatever clients send: the table holds at most `maxTrackedCalls` calls in all
 * (across IDs, so a flood of calls under one ID is bounded as well as a flood of IDs); when full,
 * the least recently used ID is forgotten. An ID also leaves the table `callMaxAgeMs` after it
 * entered. Calls of a forgotten ID become *detached*: they still end normally, once, and count as
 * top-level — over-counting load is the safe direction (a busy-looking server gets less work; a
 * client can make a server look busy anyway by sending it work).
 *
 * The table is a `Map` kept in recency order (a lookup that joins an ID moves it to the end), so
 * the least recently used ID is the first key. Nothing in it is sized by `maxTrackedCalls`: an idle
 * or lightly loaded sidecar pays per call only for the IDs it actually holds. (lru-cache, used
 * before, preallocates arrays of size `max` and refills all of them whenever its last entry is
 * deleted — ~100 µs per call with the default 10,000 when one call is in flight at a time.)
 *
 * Pure logic: time comes from the injected clock, nothing here does I/O or sets timers.
 */
import type { Clock } from "../shared/clock.js";

/** One call as the table knows it. Opaque to callers; pass it back to {@link CausalityTable.end}. */
export class TrackedCall {
  readonly causalityId: string;
  readonly startMs: number;
  /** @internal list links within the ID's entry (start order). */
  prev: TrackedCall | undefined = undefined;
  next: TrackedCall | undefined = undefined;
  /** @internal the entry holding this call; undefined once detached (its ID was forgotten). */
  entry: CallList | undefined = undefined;
  /** @internal counted among the calls that are top-level now. */
  live = false;
  ended = false;
  /** Top-level calls in flight when this call arrived (its place in the load-vs-latency profile). */
  aheadTopLevel = 0;

  constructor(causalityId: string, startMs: number) {
    this.causalityId = causalityId;
    this.startMs = startMs;
  }
}

/** The in-flight calls of one causality ID, oldest first. */
class CallList {
  head: TrackedCall | undefined = undefined;
  tail: TrackedCall | undefined = undefined;
  size = 0;
  /** When the ID entered the table (clock ms): it leaves `callMaxAgeMs` later. */
  readonly enteredMs: number;
  constructor(enteredMs: number) {
    this.enteredMs = enteredMs;
  }
}

export interface CallEndResult {
  /** False when an earlier call with the same causality ID was still in flight. */
  readonly topLevel: boolean;
  readonly durationMs: number;
}

export interface CausalityOptions {
  readonly clock: Clock;
  /** Most calls the table tracks at once, over all IDs (≥ 1). */
  readonly maxTrackedCalls: number;
  /** An ID leaves the table this long after it entered. */
  readonly callMaxAgeMs: number;
}

export interface CausalityStats {
  /** Causality IDs in the table. */
  readonly ids: number;
  /** Calls in the table. */
  readonly trackedCalls: number;
  /** Calls detached because their ID was forgotten (table full or too old), since start. */
  readonly detachedCalls: number;
}

export class CausalityTable {
  readonly #clock: Clock;
  readonly #max: number;
  readonly #maxAgeMs: number;
  /** Causality ID → its calls in flight, least recently joined first. Never holds an empty list. */
  readonly #ids = new Map<string, CallList>();
  #tracked = 0;
  #detached = 0;
  #inFlight = 0;
  // Calls that are top-level now, and the sum of their start times: their summed age at `now` is
  // count × now − sum, kept up to date in O(1) instead of walking the table per report.
  #liveCount = 0;
  #liveStartSum = 0;

  constructor(opts: CausalityOptions) {
    if (!(opts.maxTrackedCalls >= 1)) throw new RangeError("maxTrackedCalls must be at least 1");
    this.#clock = opts.clock;
    this.#max = opts.maxTrackedCalls;
    this.#maxAgeMs = opts.callMaxAgeMs;
  }

  /** Calls in flight now (tracked and detached). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** In-flight calls that no earlier in-flight call with the same ID encloses (so far). */
  get inFlightTopLevel(): number {
    return this.#liveCount;
  }

  /** Summed age (ms) of the top-level calls in flight, at `now`. */
  inFlightTopLevelAgeMs(now: number = this.#clock.now()): number {
    return this.#liveCount === 0 ? 0 : Math.max(0, this.#liveCount * now - this.#liveStartSum);
  }

  get stats(): CausalityStats {
    return { ids: this.#ids.size, trackedCalls: this.#tracked, detachedCalls: this.#detached };
  }

  start(causalityId: string): TrackedCall {
    const now = this.#clock.now();
    const call = new TrackedCall(causalityId, now);
    this.#inFlight++;
    // Make room first: the ID we are about to join may be the one forgotten.
    while (this.#tracked >= this.#max && this.#ids.size > 0) this.#forgetLeastRecent();
    let list = this.#ids.get(causalityId);
    if (list !== undefined) {
      // Joining an ID is a use of it; an ID past its age is forgotten and starts afresh.
      this.#ids.delete(causalityId);
      if (now - list.enteredMs > this.#maxAgeMs) {
        this.#detach(list);
        list = undefined;
      }
    }
    if (list === undefined) list = new CallList(now);
    this.#ids.set(causalityId, list);
    call.entry = list;
    call.prev = list.tail;
    if (list.tail) list.tail.next = call;
    else list.head = call;
    list.tail = call;
    list.size++;
    this.#tracked++;
    if (list.head === call) this.#markLive(call);
    return call;
  }

  /**
   * Ends a call and says whether it was top-level. Returns undefined when the call had already
   * ended, so a call can never be timed or counted twice.
   */
  end(call: TrackedCall): CallEndResult | undefined {
    if (call.ended) return undefined;
    call.ended = true;
    const now = this.#clock.now();
    this.#inFlight--;
    const list = call.entry;
    let topLevel = true;
    if (list !== undefined) {
      topLevel = list.head === call;
      this.#unlink(list, call);
      if (list.size === 0) {
        // A call still attached to a list means that list is the one the table holds for its ID
        // (forgetting an ID detaches all its calls), so this deletes exactly this list.
        this.#ids.delete(call.causalityId);
      } else if (topLevel && list.head !== undefined) {
        // The next oldest call of this ID is no longer enclosed by anything in flight.
        this.#markLive(list.head);
      }
    }
    if (call.live) this.#unmarkLive(call);
    return { topLevel, durationMs: Math.max(0, now - call.startMs) };
  }

  #unlink(list: CallList, call: TrackedCall): void {
    if (call.prev) call.prev.next = call.next;
    else list.head = call.next;
    if (call.next) call.next.prev = call.prev;
    else list.tail = call.prev;
    call.prev = call.next = undefined;
    call.entry = undefined;
    list.size--;
    this.#tracked--;
  }

  /** The table is full: the least recently used ID (the first key) is forgotten. */
  #forgetLeastRecent(): void {
    for (const [id, list] of this.#ids) {
      this.#ids.delete(id);
      this.#detach(list);
      return;
    }
  }

  /** The ID was forgotten: its calls end on their own as top-level calls. */
  #detach(list: CallList): void {
    let call = list.head;
    while (call !== undefined) {
      const next = call.next;
      call.prev = call.next = undefined;
      call.entry = undefined;
      if (!call.live) this.#markLive(call);
      this.#tracked--;
      this.#detached++;
      call = next;
    }
    list.head = list.tail = undefined;
    list.size = 0;
  }

  #markLive(call: TrackedCall): void {
    call.live = true;
    this.#liveCount++;
    this.#liveStartSum += call.startMs;
  }

  #unmarkLive(call: TrackedCall): void {
    call.live = false;
    this.#liveCount--;
    // Reset when idle so floating-point error in the running sum never accumulates for long.
    this.#liveStartSum = this.#liveCount === 0 ? 0 : this.#liveStartSum - call.startMs;
  }
}
