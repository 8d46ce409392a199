#!/usr/bin/env bash
# Debian packages the test suite and the benchmarks use. Idempotent; needs root (or sudo).
#   prometheus  - a real Prometheus scrapes the sidecar and router in the telemetry tests
#   chromium    - headless browser for the dashboard test (driven by playwright-core)
#   nginx-light, haproxy, wrk - peers and load tool for bench/ (the suite runs a smoke test of it)
#   valgrind    - callgrind instruction counts per request (npm run bench:instructions; smoke-tested)
# The deploy tests also need kubectl >= 1.27 (kustomize components); it is not a Debian package
# recent enough, so it is checked here, not installed. `--bench` is accepted for older callers.
set -euo pipefail
want=(prometheus chromium nginx-light haproxy wrk valgrind)
if ! command -v kubectl >/dev/null 2>&1; then
  echo "install-test-deps: warning: kubectl is not on PATH; test/e2e/deploy.test.ts will fail (install kubectl >= 1.27)" >&2
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "install-test-deps: all present (${want[*]})"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-test-deps: installed ${missing[*]}"
