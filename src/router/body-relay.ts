/**
 * A request body as one upstream attempt sends it, so that another attempt can send it again.
 *
 * undici destroys the body stream of an attempt it aborts, so it never gets the client's request
 * itself: a relay is what gets destroyed, and it lets go of the request, which stays paused with
 * the unread rest of the body. undici also sends a request's head only together with the first
 * body byte, so by the time a sidecar can answer "your app is unreachable", some of the body has
 * always been read: the relay therefore keeps the chunks it read (references, not copies) up to
 * REPLAY_LIMIT_BYTES, and the next attempt's relay sends those first, then the rest from the
 * request. Past the limit it keeps nothing and the body can no longer be sent again.
 */
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";

/** Bytes of a request body kept for a retry; a longer body is streamed but not retried once read. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;

export class BodyRelay extends Readable {
  readonly #src: IncomingMessage;
  #attached = false;
  /** Every chunk read so far, while their total stays within the limit; undefined past it. */
  #kept: Buffer[] | undefined;
  #keptBytes: number;

  /** `previous`: the relay of the attempt before, whose chunks are sent first. */
  constructor(src: IncomingMessage, previous?: BodyRelay) {
    super();
    this.#src = src;
    this.#kept = previous === undefined ? [] : previous.#kept && [...previous.#kept];
    this.#keptBytes = previous === undefined ? 0 : previous.#keptBytes;
  }

  /** True while the whole body read so far is kept: another attempt can still send it all. */
  get replayable(): boolean {
    return this.#kept !== undefined && !this.#src.destroyed;
  }

  override _read(): void {
    if (!this.#attached) {
      // Attached only when the upstream asks for data: an attempt that never got a connection
      // leaves the request untouched.
      this.#attached = true;
      if (this.#kept) for (const chunk of this.#kept) this.push(chunk);
      if (this.#src.readableEnded) {
        this.push(null);
        return;
      }
      this.#src.on("data", this.#onData);
      this.#src.on("end", this.#onEnd);
      this.#src.on("error", this.#onError);
      this.#src.on("close", this.#onClose);
    }
    this.#src.resume();
  }

  #onData = (chunk: Buffer): void => {
    if (this.#kept) {
      this.#keptBytes += chunk.length;
      if (this.#keptBytes <= REPLAY_LIMIT_BYTES) this.#kept.push(chunk);
      else this.#kept = undefined;
    }
    if (!this.push(chunk)) this.#src.pause();
  };

  #onEnd = (): void => {
    this.push(null);
  };

  #onError = (err: Error): void => {
    this.destroy(err);
  };

  #onClose = (): void => {
    if (!this.#src.readableEnded) this.destroy(new Error("the client closed the request body"));
  };

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const src = this.#src;
    if (this.#attached) {
      src.off("data", this.#onData);
      src.off("end", this.#onEnd);
      src.off("error", this.#onError);
      src.off("close", this.#onClose);
      // Still replayable: keep the rest for another attempt. Otherwise it can only be discarded,
      // which keeps the client connection usable.
      if (this.#kept !== undefined) src.pause();
      else src.resume();
    }
    callback(err);
  }
}
