#!/usr/bin/env bash
# Unpack the real Kueue manager for the Kueue-mode tests (tests/envtest/test_kueue.py) from
# shared/kueue beside or above this checkout (or $SUANDIAN_KUEUE_DIR). Prints the folder
# to export as SUANDIAN_KUEUE_BIN, or nothing when there is no Kueue to unpack.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in "${SUANDIAN_KUEUE_DIR:-}" ../shared/kueue ../../shared/kueue /work/shared/kueue; do
    if [ -n "$dir" ] && [ -x "$dir/unpack.sh" ]; then
        echo "install-kueue: unpacking $dir" >&2
        exec "$dir/unpack.sh"
    fi
done
echo "install-kueue: no shared/kueue found (set SUANDIAN_KUEUE_DIR)" >&2
