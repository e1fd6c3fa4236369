#!/usr/bin/env bash
# Install the Prometheus server and promtool from Debian's `prometheus` package, for the
# real-Prometheus tests (tests/integration/prometheus). Idempotent: does nothing when
# both are already on PATH. Called by .ci/run; safe to run by hand (needs root).
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    echo "install-prometheus: $(prometheus --version 2>&1 | head -n 1) already installed"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package may start its own service where an init system runs; the tests start
# their own server on a free loopback port and need nothing else.
command -v prometheus >/dev/null && command -v promtool >/dev/null
echo "install-prometheus: $(prometheus --version 2>&1 | head -n 1) installed"
