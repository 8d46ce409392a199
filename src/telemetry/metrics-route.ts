/**
 * `GET /metrics` as a route for the router's admin port, whose extra routes check nothing
 * themselves: the shared token is required when one is configured, like `/v1/servers` (the
 * figures are the same). Prometheus sends it with `authorization: { credentials: … }`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createTokenCheck } from "../shared/auth.js";
import { PROXY_ERROR_HEADER } from "../shared/errors.js";
import { writeJson } from "../shared/proxy-response.js";
import type { MetricsHandler } from "./setup.js";

export function metricsAdminRoute(
  handler: MetricsHandler,
  token: string | undefined,
): (req: IncomingMessage, res: ServerResponse, url: URL) => boolean {
  const authorized = createTokenCheck(token);
  return (req, res, url) => {
    if (url.pathname !== "/metrics") return false;
    if (!authorized(req.headers)) {
      writeJson(
        res,
        401,
        { error: { code: "UNAUTHORIZED", message: "missing or wrong token" } },
        { [PROXY_ERROR_HEADER]: "UNAUTHORIZED", "www-authenticate": 'Bearer realm="tasklb"' },
      );
      return true;
    }
    handler(req, res);
    return true;
  };
}
