#!/usr/bin/env bash
# Set up the real control plane for the real-API tier (tests/envtest): etcd from Debian's
# etcd-server package, and kube-apiserver, kube-controller-manager and kube-scheduler
# unpacked from ../shared/kube/ when it exists. Prints the folder to export as
# KUBEBUILDER_ASSETS (envtest's convention), or nothing when there are no binaries to
# unpack (a user with setup-envtest exports their own). Idempotent; needs root for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v etcd >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
fi
echo "install-control-plane: $(etcd --version 2>&1 | head -n 1)" >&2
# the package may start its own etcd where an init system runs; the tests start their own
# The binaries: $SUANDIAN_KUBE_DIR, else shared/kube beside this checkout or above it.
for dir in "${SUANDIAN_KUBE_DIR:-}" ../shared/kube ../../shared/kube /work/shared/kube; do
    if [ -n "$dir" ] && [ -x "$dir/unpack.sh" ]; then
        echo "install-control-plane: unpacking $dir" >&2
        exec "$dir/unpack.sh"
    fi
done
echo "install-control-plane: no shared/kube found (set SUANDIAN_KUBE_DIR)" >&2
