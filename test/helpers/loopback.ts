/**
 * A test's own HTTP server on loopback port 0: listening when this resolves, closed (connections
 * included) when the test ends.
 */
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestContext } from "node:test";

/** Listens on 127.0.0.1:0, registers the close with `t.after`, and returns the bound port. */
export async function listenLoopback(t: TestContext, server: Server): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  });
  return (server.address() as AddressInfo).port;
}
