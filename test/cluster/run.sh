#!/usr/bin/env bash
# npm run test:cluster: build (or reuse) the binaries, bring up the single-node cluster, run the proof,
# tear everything down (also on failure or interrupt), print every step's time. Needs root.
source "$(dirname "$0")/lib.sh"
export STEP_TIMES
STEP_TIMES=$(mktemp /tmp/mlserve-cluster-times.XXXXXX)
here=$(dirname "$0")
status=0

finish() {
  bash "$here/down.sh" || status=1
  echo "== step times (s) ==" >&2
  column -t -s $'\t' "$STEP_TIMES" >&2 2>/dev/null || cat "$STEP_TIMES" >&2
  rm -f "$STEP_TIMES"
  exit "$status"
}
trap finish EXIT
trap 'status=130; exit' INT TERM

bash "$here/build.sh" || { status=1; exit; }
if [[ -d $WORK/pids ]]; then
  echo "a cluster from an earlier run is still up in $WORK: tearing it down first" >&2
  bash "$here/down.sh" || { status=1; exit; }
fi
bash "$here/up.sh" || { status=1; exit; }
cd "$REPO_ROOT"
[[ -f dist/commands/generate-k8s.js ]] || npm run build
KUBECTL=$KUBECTL CONTAINERD_SOCK=$CONTAINERD_SOCK KUBECONFIG=$KUBECONFIG \
  npx tap --timeout=1800 test/cluster/proof.test.ts || status=1
