import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
} from "../../../src/shared/trace-context.js";

const TID = "0af7651916cd43dd8448eb211c80319c";
const SID = "b7ad6b7169203331";

describe("trace-context: traceparent parsing", () => {
  it("parses a valid version-00 value", () => {
    assert.deepEqual(parseTraceparent(`00-${TID}-${SID}-01`), { traceId: TID, parentId: SID, flags: 1 });
    assert.deepEqual(parseTraceparent(`00-${TID}-${SID}-00`), { traceId: TID, parentId: SID, flags: 0 });
  });

  it("rejects uppercase hex (the spec requires lowercase)", () => {
    assert.equal(parseTraceparent(`00-${TID.toUpperCase()}-${SID}-01`), undefined);
    assert.equal(parseTraceparent(`00-${TID}-${SID.toUpperCase()}-01`), undefined);
    assert.equal(parseTraceparent(`00-${TID}-${SID}-0A`), undefined);
  });

  it("rejects all-zero ids", () => {
    assert.equal(parseTraceparent(`00-${"0".repeat(32)}-${SID}-01`), undefined);
    assert.equal(parseTraceparent(`00-${TID}-${"0".repeat(16)}-01`), undefined);
  });

  it("rejects version ff and extra data after version 00", () => {
    assert.equal(parseTraceparent(`ff-${TID}-${SID}-01`), undefined);
    assert.equal(parseTraceparent(`00-${TID}-${SID}-01-extra`), undefined);
  });

  it("future versions parse their first four fields and may carry more", () => {
    assert.deepEqual(parseTraceparent(`01-${TID}-${SID}-01`), { traceId: TID, parentId: SID, flags: 1 });
    assert.deepEqual(parseTraceparent(`cc-${TID}-${SID}-09-what-the-future-holds`), {
      traceId: TID,
      parentId: SID,
      flags: 9,
    });
    assert.equal(parseTraceparent(`cc-${TID}-${SID}-09x`), undefined, "a future field must follow a dash");
  });

  it("rejects junk", () => {
    for (const v of [
      undefined,
      "",
      "garbage",
      `00-${TID}-${SID}`,
      `00-${TID}-${SID}-1`,
      `00_${TID}_${SID}_01`,
      `00-${TID.slice(1)}g-${SID}-01`,
      `0-${TID}-${SID}-01`,
      `zz-${TID}-${SID}-01`,
      `00-${TID}-${SID}-0g`,
      "00-" + "x".repeat(51),
    ]) {
      assert.equal(parseTraceparent(v), undefined, String(v));
    }
  });

  it("tolerates surrounding whitespace (OWS in header values)", () => {
    assert.equal(parseTraceparent(`  00-${TID}-${SID}-01 `)?.traceId, TID);
  });

  it("formats and generates valid values", () => {
    assert.equal(formatTraceparent(TID, SID, 1), `00-${TID}-${SID}-01`);
    assert.equal(formatTraceparent(TID, SID, 0xab), `00-${TID}-${SID}-ab`);
    const seen = new Set<string>();
    for (let i = 0; i < 600; i++) {
      const t = newTraceId();
      const s = newSpanId();
      assert.match(t, /^[0-9a-f]{32}$/);
      assert.match(s, /^[0-9a-f]{16}$/);
      assert.ok(parseTraceparent(formatTraceparent(t, s, 1)));
      seen.add(t);
    }
    assert.equal(seen.size, 600, "ids do not repeat across pool refills");
  });
});
