/**
 * BodyRelay against a real request on loopback: an attempt's relay, destroyed as undici destroys
 * an aborted attempt's body, leaves the request usable, and the next relay sends the whole body
 * (what was read before, then the rest); past REPLAY_LIMIT_BYTES the body is no longer replayable.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { request } from "undici";
import { BodyRelay, REPLAY_LIMIT_BYTES } from "../../../src/router/body-relay.js";

async function collect(r: BodyRelay): Promise<string> {
  let s = "";
  for await (const c of r) s += (c as Buffer).toString("latin1");
  return s;
}

async function withRequest(body: string, handle: (req: IncomingMessage) => Promise<string>) {
  let result: Promise<string> | undefined;
  const server = createServer((req, res) => {
    result = handle(req);
    void result.then(
      (v) => res.end(v),
      (e: Error) => res.writeHead(500).end(e.message),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const res = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      method: "POST",
      body,
    });
    return { status: res.statusCode, text: await res.body.text() };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

void test("a destroyed relay leaves the body to the next one, which sends all of it", async () => {
  const body = "x".repeat(20_000) + "end";
  const res = await withRequest(body, async (req) => {
    const first = new BodyRelay(req);
    // Read the first chunk only, as an attempt that is then aborted.
    const chunk = await new Promise<Buffer>((resolve) => first.once("data", resolve));
    first.destroy();
    assert.ok(chunk.length > 0);
    assert.equal(first.replayable, true);
    const second = new BodyRelay(req, first);
    return collect(second);
  });
  assert.equal(res.status, 200);
  assert.equal(res.text, body);
});

void test("a body read past the replay limit is no longer replayable, and is still relayed whole", async () => {
  const body = "y".repeat(REPLAY_LIMIT_BYTES + 10_000);
  const res = await withRequest(body, async (req) => {
    const relay = new BodyRelay(req);
    const got = await collect(relay);
    return `${relay.replayable}:${got.length}`;
  });
  assert.equal(res.text, `false:${body.length}`);
});
