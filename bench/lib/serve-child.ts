/**
 * The life of a bench child server (upstream, minimal proxies): listen on a free loopback port,
 * print the ready line `{"ready":true,"port":N}` that bench/lib/proc.ts waits for, and close
 * gracefully on SIGTERM.
 */
import type { Server } from "node:http";

export function serveChild(server: Server): void {
  server.keepAliveTimeout = 65_000;
  server.listen(0, "127.0.0.1", () => {
    const addr = server.address();
    process.stdout.write(
      JSON.stringify({ ready: true, port: typeof addr === "object" && addr ? addr.port : 0 }) + "\n",
    );
  });
  process.on("SIGTERM", () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
