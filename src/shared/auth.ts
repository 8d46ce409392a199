import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

/**
 * Checks a presented secret against the shared token in constant time. Both sides are hashed first
 * so the comparison time depends neither on where they differ nor on their lengths. With no token
 * configured every value (and none) passes.
 */
export function createSecretCheck(token: string | undefined): (presented: string | undefined) => boolean {
  if (token === undefined || token === "") return () => true;
  const expected = createHash("sha256").update(token).digest();
  return (presented) => {
    if (presented === undefined) return false;
    const got = createHash("sha256").update(presented).digest();
    return timingSafeEqual(expected, got);
  };
}

/** Checks the bearer token of a request (see {@link bearerToken}) in constant time. */
export function createTokenCheck(token: string | undefined): (headers: IncomingHttpHeaders) => boolean {
  const check = createSecretCheck(token);
  return (headers) => check(bearerToken(headers));
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
