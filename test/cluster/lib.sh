# Shared settings and helpers for the cluster proof scripts (sourced, not run).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.32.4}
METRICS_SERVER_VERSION=${METRICS_SERVER_VERSION:-v0.7.2}
KSERVE_VERSION=${KSERVE_VERSION:-v0.15.2}
CACHE_ROOT=${MLSERVE_TEST_CACHE:-$HOME/.cache/mlserve-test}
K8S_CACHE=$CACHE_ROOT/k8s
BIN_DIR=$K8S_CACHE/$K8S_VERSION/bin
MS_BIN=$K8S_CACHE/metrics-server-$METRICS_SERVER_VERSION/bin/metrics-server
KSERVE_BIN=$K8S_CACHE/kserve-$KSERVE_VERSION/bin/manager
PAUSE_BIN=$K8S_CACHE/pause/bin/pause
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# step NAME CMD...: runs CMD, prints how long it took, fails loudly naming the step.
step() {
  local step_name=$1
  shift
  local start end
  start=$(date +%s.%N)
  echo "==> $step_name" >&2
  if ! "$@"; then
    end=$(date +%s.%N)
    printf 'FAILED: %s (after %s s)\n' "$step_name" "$(elapsed "$start" "$end")" >&2
    return 1
  fi
  end=$(date +%s.%N)
  printf '<== %s: %s s\n' "$step_name" "$(elapsed "$start" "$end")" >&2
  printf '%s\t%s\n' "$step_name" "$(elapsed "$start" "$end")" >>"${STEP_TIMES:-/dev/null}"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

die() {
  echo "ERROR: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "missing command '$1' ($2)"
}

# The running cluster's scratch directory: certificates, configs, data, logs, pid files.
WORK=${MLSERVE_CLUSTER_DIR:-/tmp/mlserve-k8s}
NODE_NAME=mlserve-node
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
CONTAINERD_SOCK=$WORK/containerd/containerd.sock
export KUBECONFIG=$WORK/admin.kubeconfig
KUBECTL=$BIN_DIR/kubectl
PAUSE_IMAGE=local/pause:3.10

kubectl() { "$KUBECTL" "$@"; }
ctr_k8s() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# wait_for DESCRIPTION SECONDS CMD...: retries CMD every second until it succeeds or time runs out.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "timed out after ${limit}s waiting for $what" >&2
      return 1
    fi
    sleep 1
  done
}
