#!/usr/bin/env bash
# Unpack real Karmada (controller manager, scheduler, webhook, aggregated API server) for
# the Karmada-mode tests (tests/envtest/test_karmada.py) from shared/karmada beside or
# above this checkout (or $SUANDIAN_KARMADA_DIR). Prints the folder to export as
# SUANDIAN_KARMADA_BIN, or nothing when there is no Karmada to unpack.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in "${SUANDIAN_KARMADA_DIR:-}" ../shared/karmada ../../shared/karmada /work/shared/karmada; do
    if [ -n "$dir" ] && [ -x "$dir/unpack.sh" ]; then
        echo "install-karmada: unpacking $dir" >&2
        exec "$dir/unpack.sh"
    fi
done
echo "install-karmada: no shared/karmada found (set SUANDIAN_KARMADA_DIR)" >&2
