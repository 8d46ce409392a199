/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) parsing and generation.
 *
 * The causality ID of a call is the trace-id of a valid `traceparent`. Where there is none, or it
 * is invalid, the proxy starts a new trace; the spec then says the old `tracestate` belongs to no
 * trace and is dropped. A proxy that forwards `traceparent` unchanged must not touch `tracestate`.
 */
import { randomFillSync } from "node:crypto";

export interface TraceParent {
  /** 32 lowercase hex characters, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex characters, not all zero. */
  readonly parentId: string;
  /** Trace flags as a number (bit 0 = sampled). */
  readonly flags: number;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_SPAN = "0000000000000000";

/**
 * Parses one `traceparent` header value. Returns undefined for anything the spec calls invalid:
 * wrong length or separators, uppercase or non-hex digits, version `ff`, all-zero ids, or extra
 * data after a version-00 value. Unknown higher versions parse their first four fields.
 */
export function parseTraceparent(value: string | undefined): TraceParent | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v.length < 55) return undefined;
  if (v[2] !== "-" || v[35] !== "-" || v[52] !== "-") return undefined;
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === "ff") return undefined;
  if (version === "00" ? v.length !== 55 : v.length > 55 && v[55] !== "-") return undefined;
  const traceId = v.slice(3, 35);
  const parentId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { traceId, parentId, flags: parseInt(flags, 16) };
}

export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${flags < 16 ? "0" : ""}${flags.toString(16)}`;
}

// Ids come from a pre-filled random pool, hex-encoded once per refill: one crypto call and one hex
// conversion per 256 trace ids, and each id is a substring of it (V8 slices without copying).
const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let poolHex = "";
let poolOffset = POOL_BYTES;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > POOL_BYTES) {
      randomFillSync(pool);
      poolHex = pool.toString("hex");
      poolOffset = 0;
    }
    const hex = poolHex.slice(2 * poolOffset, 2 * (poolOffset + bytes));
    poolOffset += bytes;
    // All-zero ids are invalid; with 2^-64 odds this loop practically never repeats.
    if (hex !== ZERO_TRACE && hex !== ZERO_SPAN) return hex;
  }
}

export function newTraceId(): string {
  return randomHex(16);
}

export function newSpanId(): string {
  return randomHex(8);
}

export const FLAG_SAMPLED = 0x01;
