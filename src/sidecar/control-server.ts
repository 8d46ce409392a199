/**
 * The control port, apart from the data port so that routers' polls and kubelet probes never queue
 * behind application traffic and the report can be firewalled separately:
 *
 * - `GET /v1/load`  the LoadReport as JSON (shared token required when one is configured)
 * - `GET /livez`    200 while the process serves at all
 * - `GET /readyz`   200 when the app is reachable and the sidecar is not draining, else 503
 * - anything else   404 / 405 as JSON with `x-tasklb-error`
 *
 * More routes (telemetry's `/metrics`) plug in through `routes` without touching this file.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createTokenCheck } from "../shared/auth.js";
import { ErrorCodes, PROXY_ERROR_HEADER, type ErrorCode } from "../shared/errors.js";
import type { LoadReport, SidecarState } from "../shared/load-report.js";
import { writeJson } from "../shared/proxy-response.js";

export interface ControlRoute {
  /** Require the shared token (when one is configured). Default true. */
  readonly auth?: boolean;
  /** Methods served; default GET and HEAD. */
  readonly methods?: readonly string[];
  handle(req: IncomingMessage, res: ServerResponse): void | Promise<void>;
}

export type ControlRoutes = Readonly<Record<string, ControlRoute>>;

export interface ControlHandlerDeps {
  readonly token: string | undefined;
  report(): LoadReport;
  readiness(): { readonly state: SidecarState; readonly appReachable: boolean };
  /** Extra routes by exact path, e.g. `{ "/metrics": … }`. They cannot replace the built-in ones. */
  readonly routes?: ControlRoutes;
  /** Called when a route handler throws or rejects (the request gets a 500). */
  readonly onError?: (err: unknown) => void;
}

const GET_HEAD = ["GET", "HEAD"] as const;

export function writeControlError(
  res: ServerResponse,
  code: ErrorCode,
  headers?: Record<string, string>,
): void {
  const spec = ErrorCodes[code];
  writeJson(
    res,
    spec.status,
    { error: { code, message: spec.message } },
    { [PROXY_ERROR_HEADER]: code, ...headers },
  );
}

export function createControlHandler(
  deps: ControlHandlerDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const authorized = createTokenCheck(deps.token);
  const routes: Record<string, ControlRoute> = {
    ...deps.routes,
    "/v1/load": { handle: (_req, res) => writeJson(res, 200, deps.report()) },
    "/livez": { auth: false, handle: (_req, res) => writeJson(res, 200, { live: true }) },
    "/readyz": {
      auth: false,
      handle: (_req, res) => {
        const { state, appReachable } = deps.readiness();
        const ready = appReachable && state === "serving";
        writeJson(res, ready ? 200 : 503, { ready, state, appReachable });
      },
    },
  };

  return (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route === undefined) return writeControlError(res, "NOT_FOUND");
    const methods = route.methods ?? GET_HEAD;
    if (!methods.includes(req.method ?? "GET")) {
      return writeControlError(res, "METHOD_NOT_ALLOWED", { allow: methods.join(", ") });
    }
    if (route.auth !== false && !authorized(req.headers)) {
      return writeControlError(res, "UNAUTHORIZED", { "www-authenticate": 'Bearer realm="tasklb"' });
    }
    const fail = (err: unknown) => {
      deps.onError?.(err);
      if (!res.headersSent) writeJson(res, 500, { error: { code: "INTERNAL", message: "internal error" } });
      else res.destroy();
    };
    try {
      const done = route.handle(req, res);
      if (done instanceof Promise) done.catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}
