#!/usr/bin/env bash
# Debian packages the test suite and the benchmarks use. Idempotent; needs root (or sudo).
#   prometheus  - a real Prometheus scrapes the sidecar and router in the telemetry tests
#   chromium    - headless browser for the dashboard test (driven by playwright-core)
#   nginx-light, haproxy, wrk - peers and load tool for bench/ (not used by the tests)
set -euo pipefail
want=(prometheus chromium)
if [ "${1:-}" = "--bench" ]; then want+=(nginx-light haproxy wrk); fi
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
