import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/**
 * Checks a shared token in constant time. Both sides are hashed first so the comparison time
 * depends neither on where they differ nor on their lengths.
 */
export function createTokenCheck(token: string | undefined): (headers: IncomingHttpHeaders) => boolean {
  if (token === undefined || token === "") return () => true;
  const expected = createHash("sha256").update(token).digest();
  return (headers) => {
    const presented = bearerToken(headers);
    if (presented === undefined) return false;
    const got = createHash("sha256").update(presented).digest();
    return timingSafeEqual(expected, got);
  };
}

/** The token from `Authorization: Bearer <token>` or, for browsers and curl, `X-Tasklb-Token`. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string" && auth.length > 7 && auth.slice(0, 7).toLowerCase() === "bearer ") {
    return auth.slice(7).trim();
  }
  const alt = headers["x-tasklb-token"];
  return typeof alt === "string" ? alt : undefined;
}

export function authorizationHeader(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}
