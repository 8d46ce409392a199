/**
 * A closed-loop burst for the A/B benches: exactly `requests` GET /small through `connections`
 * keep-alive connections, failing on any status but 200 (with the proxy's error code, if it gave
 * one). Bounded by the count; the caller's own timeouts bound the time.
 */
import { Pool } from "undici";

export async function driveSmall(url: string, requests: number, connections: number): Promise<void> {
  const pool = new Pool(url, { connections });
  let left = requests;
  const worker = async () => {
    while (left-- > 0) {
      const r = await pool.request({ path: "/small", method: "GET" });
      await r.body.dump();
      if (r.statusCode !== 200)
        throw new Error(`${url}: status ${r.statusCode} ${String(r.headers["x-tasklb-error"] ?? "")}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, worker));
  } finally {
    await pool.close();
  }
}
