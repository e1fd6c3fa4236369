#!/usr/bin/env bash
# End-to-end on a real cluster: kind with nodes in two regions, the chart installed from
# this tree, two PowerSites and three small ComputeJobs; checks that each is placed
# where it may run, started or deferred as its policy says, and that the child Jobs carry
# the site's node affinity.
#
# Needs: docker (a running engine), kind, kubectl, helm, openssl.
#   hack/kind-e2e.sh              create cluster "suandian-e2e", test, delete it
#   KEEP=1 hack/kind-e2e.sh       leave the cluster running afterwards
#   REUSE=1 hack/kind-e2e.sh      use the existing cluster of that name
# Exit status 0 when every check passed; the first failed check is printed.
set -euo pipefail

CLUSTER="${CLUSTER:-suandian-e2e}"
NAMESPACE=suandian-system
JOBS_NAMESPACE=suandian-e2e
IMAGE=suandian/suandian:e2e
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
TIMEOUT="${TIMEOUT:-180}"

log() { printf '\n== %s\n' "$*"; }
fail() { printf '\nFAIL: %s\n' "$*" >&2; exit 1; }

for tool in docker kind kubectl helm openssl; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done
docker info >/dev/null 2>&1 || fail "the Docker engine is not reachable"

cleanup() {
    rm -rf "$WORK"
    if [ "${KEEP:-0}" != 1 ] && [ "${REUSE:-0}" != 1 ]; then
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

log "cluster $CLUSTER: one control plane, a worker in gansu, a worker in guangdong"
if [ "${REUSE:-0}" != 1 ]; then
    cat >"$WORK/kind.yaml" <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
    labels:
      topology.kubernetes.io/region: gansu
  - role: worker
    labels:
      topology.kubernetes.io/region: guangdong
EOF
    kind create cluster --name "$CLUSTER" --config "$WORK/kind.yaml" --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

log "image $IMAGE from the Dockerfile"
"$ROOT/hack/build-image.sh" --tag "$IMAGE" --kind "$CLUSTER"

log "webhook certificate without cert-manager (the chart's documented alternative)"
service="suandian-webhook"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$service.$NAMESPACE.svc" \
    -addext "subjectAltName=DNS:$service.$NAMESPACE.svc,DNS:$service.$NAMESPACE.svc.cluster.local" \
    -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NAMESPACE" create secret tls suandian-webhook-tls \
    --cert "$WORK/tls.crt" --key "$WORK/tls.key" --dry-run=client -o yaml | kubectl apply -f -

log "helm install the chart"
helm upgrade --install suandian "$ROOT/helm/suandian" --namespace "$NAMESPACE" \
    --set image.repository=suandian/suandian --set image.tag=e2e \
    --set image.pullPolicy=Never \
    --set webhook.certManager.enabled=false \
    --set webhook.tls.secretName=suandian-webhook-tls \
    --set webhook.tls.caBundle="$(base64 <"$WORK/tls.crt" | tr -d '\n')" \
    --wait --timeout 5m
kubectl -n "$NAMESPACE" rollout status deploy/suandian --timeout=180s

log "PowerSites gansu and guangdong (examples/powersites)"
kubectl apply -f "$ROOT/examples/powersites/gansu.yaml" -f "$ROOT/examples/powersites/guangdong.yaml"

log "three small ComputeJobs"
kubectl create namespace "$JOBS_NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
job() {  # name policy sites maxDelay
    cat <<EOF
apiVersion: suandian.io/v1alpha1
kind: ComputeJob
metadata: {name: $1, namespace: $JOBS_NAMESPACE}
spec:
  duration: 1h
  deadline: {maxDelay: $4}
  policy: $2
  sites: [$3]
  power: {watts: 200}
  template:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: work
              image: busybox:1.36
              command: [sleep, "30"]
              resources: {requests: {cpu: 10m, memory: 16Mi}}
EOF
}
{ job e2e-run-now RunNow guangdong 2h; echo ---
  job e2e-place-only PlaceOnly "gansu, guangdong" 2h; echo ---
  job e2e-flexible Optimize gansu 12h; } >"$WORK/jobs.yaml"
kubectl apply -f "$WORK/jobs.yaml"

field() { kubectl -n "$JOBS_NAMESPACE" get computejob "$1" -o "jsonpath=$2" 2>/dev/null || true; }
wait_phase() {  # name phases-regex
    local deadline=$((SECONDS + TIMEOUT)) phase=""
    while [ $SECONDS -lt $deadline ]; do
        phase="$(field "$1" '{.status.phase}')"
        if [[ "$phase" =~ ^($2)$ ]]; then echo "$phase"; return 0; fi
        sleep 2
    done
    fail "$1: phase '$phase' after ${TIMEOUT}s, expected $2"
}
child_region() {  # name -> the region of the child Job's required node affinity
    local child
    child="$(field "$1" '{.status.jobName}')"
    [ -n "$child" ] || fail "$1: no child Job in status.jobName"
    kubectl -n "$JOBS_NAMESPACE" get job "$child" -o \
        'jsonpath={.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]}'
}

log "check: RunNow starts at once in guangdong"
wait_phase e2e-run-now 'Running|Succeeded' >/dev/null
[ "$(field e2e-run-now '{.status.site}')" = guangdong ] || fail "e2e-run-now not placed in guangdong"
[ "$(child_region e2e-run-now)" = guangdong ] || fail "e2e-run-now child Job not pinned to guangdong"

log "check: PlaceOnly starts at once at one of its sites, its pod on a node of that site"
wait_phase e2e-place-only 'Running|Succeeded' >/dev/null
site="$(field e2e-place-only '{.status.site}')"
[[ "$site" =~ ^(gansu|guangdong)$ ]] || fail "e2e-place-only placed at '$site'"
[ "$(child_region e2e-place-only)" = "$site" ] || fail "e2e-place-only affinity differs from $site"
child="$(field e2e-place-only '{.status.jobName}')"
kubectl -n "$JOBS_NAMESPACE" wait pod -l "job-name=$child" --for=condition=PodScheduled \
    --timeout="${TIMEOUT}s" >/dev/null
node="$(kubectl -n "$JOBS_NAMESPACE" get pod -l "job-name=$child" -o 'jsonpath={.items[0].spec.nodeName}')"
region="$(kubectl get node "$node" -o 'jsonpath={.metadata.labels.topology\.kubernetes\.io/region}')"
[ "$region" = "$site" ] || fail "e2e-place-only pod on $node ($region), placed at $site"

log "check: the flexible job is placed in gansu, deferred with a suspended child or started"
phase="$(wait_phase e2e-flexible 'Deferred|Running|Succeeded')"
[ "$(field e2e-flexible '{.status.site}')" = gansu ] || fail "e2e-flexible not placed in gansu"
[ "$(child_region e2e-flexible)" = gansu ] || fail "e2e-flexible child Job not pinned to gansu"
if [ "$phase" = Deferred ]; then
    child="$(field e2e-flexible '{.status.jobName}')"
    [ "$(kubectl -n "$JOBS_NAMESPACE" get job "$child" -o 'jsonpath={.spec.suspend}')" = true ] \
        || fail "e2e-flexible is Deferred but its child Job is not suspended"
    planned="$(field e2e-flexible '{.status.plannedStart}')"
    latest="$(field e2e-flexible '{.status.latestStart}')"
    [ -n "$planned" ] && [[ ! "$planned" > "$latest" ]] \
        || fail "e2e-flexible planned start $planned is after its latest start $latest"
fi
echo "e2e-flexible: $phase"

log "check: the active replica serves metrics for both sites"
# Only the replica kopf peering made active has site metrics: read every replica's.
: >"$WORK/metrics.txt"
for ip in $(kubectl -n "$NAMESPACE" get pods -l app.kubernetes.io/name=suandian \
        -o 'jsonpath={.items[*].status.podIP}'); do
    kubectl -n "$NAMESPACE" run "metrics-probe-${ip//./-}" --rm -i --restart=Never \
        --image=busybox:1.36 --command -- wget -qO- "http://$ip:8081/metrics" \
        >>"$WORK/metrics.txt" || true
done
for site in gansu guangdong; do
    grep -q "suandian_site_green_power_watts{site=\"$site\"" "$WORK/metrics.txt" \
        || fail "no suandian_site_green_power_watts for $site in any replica's /metrics"
done

log "all checks passed"
