# syntax=docker/dockerfile:1
#
# One image for both roles:
#   docker build -t tasklb:0.1.0 .
#   docker run --rm tasklb:0.1.0 sidecar --app http://127.0.0.1:3000
#   docker run --rm -p 8000:8000 -p 9900:9900 tasklb:0.1.0 router --server http://10.0.0.7:8080
# See docs/deploy.md. test/e2e/deploy-image.test.ts lints this file and checks the rules below.

ARG NODE_VERSION=24

# ---- build: dev dependencies + TypeScript -> dist/src -------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script runs tsc, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# Only src/ is in the build context's copy, so tsc emits dist/src and nothing of test/ or bench/.
RUN npm run build \
 && find src -type f ! -name '*.ts' -exec sh -c 'mkdir -p "dist/$(dirname "$1")" && cp "$1" "dist/$1"' _ {} \;

# ---- runtime: production dependencies + dist/src only ------------------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# tini is PID 1: it forwards SIGTERM/SIGINT to node (which then drains) and reaps zombies. Kubernetes
# has no `docker run --init`, so the init must be in the image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# No NODE_OPTIONS here: it depends on the role. The sidecar's manifests set
# --max-semi-space-size=4 (a 4 MiB young generation: RSS under load ~95 instead of ~120-143 MiB, once
# per app pod); the router keeps V8's default, which with 64 KiB bodies at saturation served ~1.4x
# the requests per second (BENCHMARKS.md, "Memory").
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run tsc, which is a dev dependency and not installed here.
# Node never loads type declarations, source maps or the `esnext` builds (an export condition only
# bundlers use): dropping them takes node_modules from ~89 MB to ~27 MB.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && find node_modules -type d -path '*/build/esnext' -prune -exec rm -rf {} +
COPY --from=build /src/dist/src ./dist/src
# The node image's unprivileged user (uid/gid 1000); the Kubernetes manifests pin the same ids.
USER 1000:1000
# sidecar: 8080 data, 9901 control; router: 8000 data, 9900 admin.
EXPOSE 8080 9901 8000 9900
# Docker/Compose only (Kubernetes uses its probes). No curl in the image: node fetches /livez on the
# sidecar's control port and the router's admin port (taken from TASKLB_CONTROL / TASKLB_ADMIN
# when set) and is healthy when either answers 2xx. TASKLB_HEALTH_URL overrides both.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const e=process.env,p=(v,d)=>(v&&v.split(':').pop())||d,u=e.TASKLB_HEALTH_URL?[e.TASKLB_HEALTH_URL]:[p(e.TASKLB_CONTROL,'9901'),p(e.TASKLB_ADMIN,'9900')].map(x=>'http://127.0.0.1:'+x+'/livez');Promise.any(u.map(x=>fetch(x,{signal:AbortSignal.timeout(4000)}).then(r=>{if(!r.ok)throw new Error(x+' '+r.status)}))).then(()=>process.exit(0),()=>process.exit(1))"]
ENTRYPOINT ["tini", "--", "node", "dist/src/cli.js"]
CMD ["--help"]
