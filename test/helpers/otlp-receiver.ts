/**
 * An OTLP/HTTP receiver for tests: a real HTTP server on 127.0.0.1:0 that accepts
 * `POST /v1/traces` and `POST /v1/metrics` in protobuf (`application/x-protobuf`, optionally gzip)
 * or JSON, decodes the payload and keeps it. The protobuf decoding is a small wire-format reader
 * over the fields of opentelemetry-proto (collector/trace/v1, collector/metrics/v1) that tests
 * look at, written here because the OTLP packages only ship an encoder.
 *
 * `mode: "refuse"` is modelled by closing the receiver; `mode: "hang"` accepts requests and never
 * answers (a collector that is stuck).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync } from "node:zlib";

export type AttrValue = string | number | boolean | bigint | undefined;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Record<string, AttrValue>;
  readonly events: { name: string; attributes: Record<string, AttrValue> }[];
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
  readonly resource: Record<string, AttrValue>;
  readonly scope: string;
}

export interface ReceivedDataPoint {
  readonly attributes: Record<string, AttrValue>;
  /** Sum/gauge value, or a histogram's count. */
  readonly value: number;
  readonly sum?: number;
}

export interface ReceivedMetric {
  readonly name: string;
  readonly kind: "sum" | "gauge" | "histogram" | "other";
  readonly dataPoints: ReceivedDataPoint[];
  readonly resource: Record<string, AttrValue>;
}

export interface ReceivedRequest {
  readonly path: string;
  readonly contentType: string;
  readonly headers: IncomingMessage["headers"];
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly metrics: ReceivedMetric[];
  readonly requests: ReceivedRequest[];
  /** Waits (bounded) until `predicate` holds; returns false on timeout. */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

// ---- protobuf wire format ---------------------------------------------------------------------

type Field =
  | { no: number; wire: 0; v: bigint }
  | { no: number; wire: 1; b: Buffer }
  | { no: number; wire: 2; b: Buffer }
  | { no: number; wire: 5; b: Buffer };

function readVarint(buf: Buffer, pos: { i: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos.i >= buf.length) throw new Error("truncated varint");
    const byte = buf[pos.i++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7n;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  const pos = { i: 0 };
  while (pos.i < buf.length) {
    const key = Number(readVarint(buf, pos));
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, v: readVarint(buf, pos) });
    else if (wire === 1) {
      out.push({ no, wire, b: buf.subarray(pos.i, pos.i + 8) });
      pos.i += 8;
    } else if (wire === 2) {
      const len = Number(readVarint(buf, pos));
      out.push({ no, wire, b: buf.subarray(pos.i, pos.i + len) });
      pos.i += len;
    } else if (wire === 5) {
      out.push({ no, wire, b: buf.subarray(pos.i, pos.i + 4) });
      pos.i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const bytesOf = (f: Field[], no: number): Buffer[] =>
  f.filter((x): x is Extract<Field, { wire: 2 }> => x.no === no && x.wire === 2).map((x) => x.b);
const oneBytes = (f: Field[], no: number): Buffer | undefined => bytesOf(f, no)[0];
const str = (f: Field[], no: number): string => oneBytes(f, no)?.toString("utf8") ?? "";
const hex = (f: Field[], no: number): string => oneBytes(f, no)?.toString("hex") ?? "";
const varint = (f: Field[], no: number): bigint | undefined =>
  f.find((x): x is Extract<Field, { wire: 0 }> => x.no === no && x.wire === 0)?.v;
const fixed64 = (f: Field[], no: number): Buffer | undefined =>
  f.find((x): x is Extract<Field, { wire: 1 }> => x.no === no && x.wire === 1)?.b;

function anyValue(buf: Buffer): AttrValue {
  const f = fields(buf);
  if (oneBytes(f, 1) !== undefined) return str(f, 1);
  const b = varint(f, 2);
  if (b !== undefined) return b !== 0n;
  const i = varint(f, 3);
  if (i !== undefined) return BigInt.asIntN(64, i);
  const d = fixed64(f, 4);
  if (d !== undefined) return d.readDoubleLE(0);
  return undefined;
}

function keyValues(bufs: Buffer[]): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const b of bufs) {
    const f = fields(b);
    const v = oneBytes(f, 2);
    out[str(f, 1)] = v ? anyValue(v) : undefined;
  }
  return out;
}

function resourceOf(buf: Buffer | undefined): Record<string, AttrValue> {
  return buf ? keyValues(bytesOf(fields(buf), 1)) : {};
}

function decodeTracesProto(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rs of bytesOf(fields(body), 1)) {
    const rsf = fields(rs);
    const resource = resourceOf(oneBytes(rsf, 1));
    for (const ss of bytesOf(rsf, 2)) {
      const ssf = fields(ss);
      const scopeBuf = oneBytes(ssf, 1);
      const scope = scopeBuf ? str(fields(scopeBuf), 1) : "";
      for (const sp of bytesOf(ssf, 2)) {
        const f = fields(sp);
        const statusBuf = oneBytes(f, 15);
        spans.push({
          traceId: hex(f, 1),
          spanId: hex(f, 2),
          parentSpanId: hex(f, 4),
          name: str(f, 5),
          kind: Number(varint(f, 6) ?? 0n),
          attributes: keyValues(bytesOf(f, 9)),
          events: bytesOf(f, 11).map((e) => {
            const ef = fields(e);
            return { name: str(ef, 2), attributes: keyValues(bytesOf(ef, 3)) };
          }),
          statusCode: statusBuf ? Number(varint(fields(statusBuf), 3) ?? 0n) : 0,
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

function numberPoint(buf: Buffer): ReceivedDataPoint {
  const f = fields(buf);
  const d = fixed64(f, 4);
  const i = fixed64(f, 6);
  const value = d !== undefined ? d.readDoubleLE(0) : i !== undefined ? Number(i.readBigInt64LE(0)) : NaN;
  return { attributes: keyValues(bytesOf(f, 7)), value };
}

function histogramPoint(buf: Buffer): ReceivedDataPoint {
  const f = fields(buf);
  const count = fixed64(f, 4);
  const sum = fixed64(f, 5);
  return {
    attributes: keyValues(bytesOf(f, 9)),
    value: count ? Number(count.readBigUInt64LE(0)) : 0,
    ...(sum ? { sum: sum.readDoubleLE(0) } : {}),
  };
}

function decodeMetricsProto(body: Buffer): ReceivedMetric[] {
  const out: ReceivedMetric[] = [];
  for (const rm of bytesOf(fields(body), 1)) {
    const rmf = fields(rm);
    const resource = resourceOf(oneBytes(rmf, 1));
    for (const sm of bytesOf(rmf, 2)) {
      for (const m of bytesOf(fields(sm), 2)) {
        const f = fields(m);
        const gauge = oneBytes(f, 5);
        const sum = oneBytes(f, 7);
        const hist = oneBytes(f, 9);
        const name = str(f, 1);
        if (sum)
          out.push({ name, kind: "sum", dataPoints: bytesOf(fields(sum), 1).map(numberPoint), resource });
        else if (gauge)
          out.push({ name, kind: "gauge", dataPoints: bytesOf(fields(gauge), 1).map(numberPoint), resource });
        else if (hist)
          out.push({
            name,
            kind: "histogram",
            dataPoints: bytesOf(fields(hist), 1).map(histogramPoint),
            resource,
          });
        else out.push({ name, kind: "other", dataPoints: [], resource });
      }
    }
  }
  return out;
}

// ---- OTLP/JSON ---------------------------------------------------------------------------------

interface JsonKV {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
}

function jsonAttrs(kvs: JsonKV[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of kvs ?? []) {
    const v = kv.value ?? {};
    out[kv.key] =
      v.stringValue ??
      v.boolValue ??
      (v.intValue !== undefined ? BigInt(v.intValue) : undefined) ??
      v.doubleValue;
  }
  return out;
}

/** OTLP/JSON ids are hex strings per the spec; the JS exporter may send base64 in older versions. */
function jsonId(id: string | undefined, bytes: number): string {
  if (!id) return "";
  if (/^[0-9a-f]+$/i.test(id) && id.length === bytes * 2) return id.toLowerCase();
  return Buffer.from(id, "base64").toString("hex");
}

function decodeTracesJson(body: Buffer): ReceivedSpan[] {
  const doc = JSON.parse(body.toString("utf8")) as {
    resourceSpans?: {
      resource?: { attributes?: JsonKV[] };
      scopeSpans?: {
        scope?: { name?: string };
        spans?: {
          traceId?: string;
          spanId?: string;
          parentSpanId?: string;
          name?: string;
          kind?: number;
          attributes?: JsonKV[];
          events?: { name?: string; attributes?: JsonKV[] }[];
          status?: { code?: number };
        }[];
      }[];
    }[];
  };
  const spans: ReceivedSpan[] = [];
  for (const rs of doc.resourceSpans ?? []) {
    const resource = jsonAttrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        spans.push({
          traceId: jsonId(s.traceId, 16),
          spanId: jsonId(s.spanId, 8),
          parentSpanId: jsonId(s.parentSpanId, 8),
          name: s.name ?? "",
          kind: s.kind ?? 0,
          attributes: jsonAttrs(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name ?? "", attributes: jsonAttrs(e.attributes) })),
          statusCode: s.status?.code ?? 0,
          resource,
          scope: ss.scope?.name ?? "",
        });
      }
    }
  }
  return spans;
}

interface JsonPoint {
  attributes?: JsonKV[];
  asDouble?: number;
  asInt?: string | number;
  count?: string | number;
  sum?: number;
}

function decodeMetricsJson(body: Buffer): ReceivedMetric[] {
  const doc = JSON.parse(body.toString("utf8")) as {
    resourceMetrics?: {
      resource?: { attributes?: JsonKV[] };
      scopeMetrics?: {
        metrics?: {
          name?: string;
          sum?: { dataPoints?: JsonPoint[] };
          gauge?: { dataPoints?: JsonPoint[] };
          histogram?: { dataPoints?: JsonPoint[] };
        }[];
      }[];
    }[];
  };
  const out: ReceivedMetric[] = [];
  const point = (p: JsonPoint): ReceivedDataPoint => ({
    attributes: jsonAttrs(p.attributes),
    value:
      p.asDouble ?? (p.asInt !== undefined ? Number(p.asInt) : p.count !== undefined ? Number(p.count) : NaN),
    ...(p.sum !== undefined ? { sum: p.sum } : {}),
  });
  for (const rm of doc.resourceMetrics ?? []) {
    const resource = jsonAttrs(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const name = m.name ?? "";
        if (m.sum) out.push({ name, kind: "sum", dataPoints: (m.sum.dataPoints ?? []).map(point), resource });
        else if (m.gauge)
          out.push({ name, kind: "gauge", dataPoints: (m.gauge.dataPoints ?? []).map(point), resource });
        else if (m.histogram) {
          out.push({
            name,
            kind: "histogram",
            dataPoints: (m.histogram.dataPoints ?? []).map(point),
            resource,
          });
        } else out.push({ name, kind: "other", dataPoints: [], resource });
      }
    }
  }
  return out;
}

// ---- the server --------------------------------------------------------------------------------

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export async function startOtlpReceiver(opts: { mode?: "ok" | "hang" } = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metrics: ReceivedMetric[] = [];
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0]!;
    const contentType = String(req.headers["content-type"] ?? "");
    requests.push({ path, contentType, headers: req.headers });
    if (opts.mode === "hang") return; // never answers
    let body = await readBody(req);
    if (req.headers["content-encoding"] === "gzip") body = gunzipSync(body);
    const json = contentType.includes("json");
    if (req.method !== "POST" || (path !== "/v1/traces" && path !== "/v1/metrics")) {
      res.writeHead(404).end();
      return;
    }
    try {
      if (path === "/v1/traces") spans.push(...(json ? decodeTracesJson(body) : decodeTracesProto(body)));
      else metrics.push(...(json ? decodeMetricsJson(body) : decodeMetricsProto(body)));
    } catch (err) {
      res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
      return;
    }
    // An empty Export*ServiceResponse is an empty protobuf message / JSON object.
    if (json) res.writeHead(200, { "content-type": "application/json" }).end("{}");
    else res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    metrics,
    requests,
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = performance.now() + timeoutMs;
      while (!predicate()) {
        if (performance.now() > deadline) return false;
        await new Promise((r) => setTimeout(r, 25));
      }
      return true;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
