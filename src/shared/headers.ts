/**
 * Header rules shared by the sidecar and the router (RFC 9110 §7.6): hop-by-hop fields are
 * dropped in both directions (the fixed list and every field named in `Connection`), `Via` gets
 * our hop appended, and `X-Forwarded-For` is set; incoming `X-Forwarded-*` and `Forwarded` are
 * kept only when configured to trust them, and only then do `X-Forwarded-Proto/Host` go on (the
 * next hop's own connection already tells it the scheme, and `Host` passes unchanged). A
 * request's `x-tasklb-load` (a router asking its sidecar for the piggybacked load report) is ours
 * and never forwarded: each hop adds its own. Works on Node's flat raw-header arrays so no header
 * object is built per request.
 */
import { LOAD_HEADER } from "./load-report.js";

/** Always hop-by-hop. `expect` is answered by Node itself (100-continue) and undici refuses it. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "expect",
  "http2-settings",
]);

export interface RequestHeaderContext {
  /** Our `Via` entry, e.g. `1.1 tasklb-sidecar`. */
  readonly via: string;
  /** Trust X-Forwarded-* and Forwarded from the client (set when a trusted proxy is in front). */
  readonly trustForwarded: boolean;
  /** The client's address as this hop saw it. */
  readonly remoteAddress: string | undefined;
  /** `http` or `https`: the protocol the client used to reach this hop. */
  readonly proto: string;
  /** Keep `Connection: upgrade` and `Upgrade` (WebSocket handshake forwarded over a raw socket). */
  readonly keepUpgrade?: boolean;
}

/**
 * Adds the field names a `Connection` value lists (lowercased) to `into`, beyond the options that
 * name no field. Almost every value is exactly `keep-alive` or `close`: those cost one comparison.
 */
function addConnectionTokens(value: string, into: Set<string> | undefined): Set<string> | undefined {
  if (value.length <= 10 && PLAIN_CONNECTION.has(value.toLowerCase())) return into;
  for (const t of value.split(",")) {
    const tok = t.trim().toLowerCase();
    if (tok === "" || PLAIN_CONNECTION.has(tok)) continue;
    (into ??= new Set()).add(tok);
  }
  return into;
}

/** `Connection` options that are not field names. */
const PLAIN_CONNECTION: ReadonlySet<string> = new Set(["close", "keep-alive", "upgrade"]);

/** Names listed in `Connection` values (lowercased), or undefined when there are none beyond the usual. */
function connectionTokens(raw: readonly string[]): Set<string> | undefined {
  let tokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length !== 10 || name.toLowerCase() !== "connection") continue;
    tokens = addConnectionTokens(raw[i + 1]!, tokens);
  }
  return tokens;
}

/**
 * Appends the headers to send upstream to `out`, a flat [name, value, …] array. `skip` names
 * (lowercase) are dropped too: the caller sets those itself (trace context). Returns whether the
 * request has a body (a non-zero Content-Length or any Transfer-Encoding).
 */
export function forwardRequestHeaders(
  raw: readonly string[],
  ctx: RequestHeaderContext,
  skip: ReadonlySet<string> | undefined,
  out: string[],
): boolean {
  let hasBody = false;
  const named = connectionTokens(raw);
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let via: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    const value = raw[i + 1]!;
    if (HOP_BY_HOP.has(lower)) {
      if (lower === "transfer-encoding") hasBody = true;
      if (ctx.keepUpgrade && (lower === "upgrade" || lower === "connection")) {
        if (lower === "upgrade") out.push("upgrade", value);
      }
      continue;
    }
    if (named?.has(lower) || skip?.has(lower)) continue;
    switch (lower) {
      case "content-length":
        if (value !== "0") hasBody = true;
        out.push(name, value);
        continue;
      case "via":
        via = via === undefined ? value : `${via}, ${value}`;
        continue;
      case "x-forwarded-for":
        if (ctx.trustForwarded) xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case "x-forwarded-proto":
        if (ctx.trustForwarded) xfProto ??= value;
        continue;
      case "x-forwarded-host":
        if (ctx.trustForwarded) xfHost ??= value;
        continue;
      case "forwarded":
        if (ctx.trustForwarded) out.push(name, value);
        continue;
      case LOAD_HEADER:
        continue;
      default:
        out.push(name, value);
    }
  }
  if (ctx.keepUpgrade) out.push("connection", "upgrade");
  out.push("via", via === undefined ? ctx.via : `${via}, ${ctx.via}`);
  const client = ctx.remoteAddress ?? "unknown";
  out.push("x-forwarded-for", xff === undefined ? client : `${xff}, ${client}`);
  // Proto and host only when they say more than the next hop's own connection does (the Host
  // header passes unchanged, and every hop speaks `ctx.proto`): a trusted proxy's values, or a
  // scheme other than plain http. Each header costs undici ~1.7k instructions to validate.
  if (xfProto !== undefined || ctx.proto !== "http") out.push("x-forwarded-proto", xfProto ?? ctx.proto);
  if (xfHost !== undefined) out.push("x-forwarded-host", xfHost);
  return hasBody;
}

/**
 * Response headers from undici's raw Buffer pairs to a flat string array for `res.writeHead`,
 * hop-by-hop fields dropped and our `Via` appended. `strip` (lowercase) names are dropped too.
 * One pass over the raw pairs (this runs on every response): fields named in `Connection` are
 * rare, so they are taken out afterwards, only when there are any. Returns the body length the
 * response declares (`Content-Length`, when there is exactly one valid value), or -1.
 */
export function forwardResponseHeaders(
  raw: readonly Buffer[],
  via: string,
  strip: ReadonlySet<string> | undefined,
  out: string[],
): number {
  const start = out.length;
  let named: Set<string> | undefined;
  let viaSeen: string | undefined;
  let length = -1;
  let lengths = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString("latin1");
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === "connection") named = addConnectionTokens(raw[i + 1]!.toString("latin1"), named);
      continue;
    }
    if (strip?.has(lower)) continue;
    const value = raw[i + 1]!.toString("latin1");
    if (lower === "via") {
      viaSeen = viaSeen === undefined ? value : `${viaSeen}, ${value}`;
      continue;
    }
    if (lower === "content-length") {
      lengths++;
      length = plainCount(value);
    }
    out.push(name, value);
  }
  if (lengths !== 1) length = -1;
  if (named !== undefined) {
    if (named.has("via")) viaSeen = undefined;
    let w = start;
    for (let r = start; r < out.length; r += 2) {
      if (named.has(out[r]!.toLowerCase())) continue;
      out[w++] = out[r]!;
      out[w++] = out[r + 1]!;
    }
    out.length = w;
  }
  out.push("via", viaSeen === undefined ? via : `${viaSeen}, ${via}`);
  return length;
}

/** A decimal count of at most 15 digits, or -1. */
function plainCount(v: string): number {
  if (v.length === 0 || v.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** True when a `Via` value already carries our own (instance-unique) pseudonym: a loop. */
export function viaHasLoop(viaValue: string | string[] | undefined, pseudonym: string): boolean {
  if (viaValue === undefined) return false;
  const v = Array.isArray(viaValue) ? viaValue.join(",") : viaValue;
  return v.includes(pseudonym);
}

/** The first value of a header in a flat raw array (case-insensitive), and how many times it occurs. */
export function rawHeaderValues(raw: readonly string[], lowerName: string): string[] | undefined {
  let values: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n.length === lowerName.length && n.toLowerCase() === lowerName) (values ??= []).push(raw[i + 1]!);
  }
  return values;
}
