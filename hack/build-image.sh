#!/usr/bin/env bash
# Build the operator image from the Dockerfile (the chart's default image is this one:
# nobody else builds it), and optionally load it into a kind cluster.
#
# Needs: docker (a running engine); kind for --kind.
#   hack/build-image.sh                         ghcr.io/suandian/suandian:<chart appVersion>
#   hack/build-image.sh -t my.registry/suandian:dev --push
#   hack/build-image.sh --kind suandian-e2e     and `kind load docker-image` it there
# Prints the image reference on the last line of stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/helm/suandian/Chart.yaml")
image="ghcr.io/suandian/suandian:${version:?no appVersion in helm/suandian/Chart.yaml}"
kind_cluster=""
push=0
while [ $# -gt 0 ]; do
    case "$1" in
        -t|--tag) image="$2"; shift 2 ;;
        --kind) kind_cluster="$2"; shift 2 ;;
        --push) push=1; shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
command -v docker >/dev/null || { echo "build-image: docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "build-image: the Docker engine is not reachable" >&2; exit 1; }

docker build -t "$image" "$ROOT" >&2
# the image's own smoke test: the entrypoint answers, as the user the chart runs it as
docker run --rm --user 10001:10001 "$image" --version >&2
if [ "$push" = 1 ]; then
    docker push "$image" >&2
fi
if [ -n "$kind_cluster" ]; then
    command -v kind >/dev/null || { echo "build-image: kind is not installed" >&2; exit 1; }
    kind load docker-image --name "$kind_cluster" "$image" >&2
fi
echo "$image"
