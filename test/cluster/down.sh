#!/usr/bin/env bash
# Stops the cluster up.sh started and removes every trace of it: processes (by their pid files and the
# containers' shims), mounts, network namespaces, iptables chains, interfaces and $WORK. Then checks that
# nothing is left and exits non-zero naming what is.
source "$(dirname "$0")/lib.sh"
set +e

stop_pid() { # name: TERM, then KILL after 10 s
  local file=$WORK/pids/$1.pid pid
  [[ -f $file ]] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

teardown() {
  if [[ -d $WORK/pids ]]; then
    # workloads first, while the kubelet can still stop them gracefully
    if [[ -f $WORK/pids/kube-apiserver.pid ]]; then
      timeout 60 "$KUBECTL" delete inferenceservices,deployments,services,hpa,pdb -l app.kubernetes.io/managed-by=mlserve --all-namespaces --wait=true >/dev/null 2>&1
    fi
    for name in kserve-manager metrics-server kube-proxy kubelet kube-scheduler kube-controller-manager; do stop_pid "$name"; done
    # the containers' processes outlive the kubelet and containerd: kill their tasks, then their shims
    if [[ -S $CONTAINERD_SOCK ]]; then
      for task in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s KILL "$task" >/dev/null 2>&1; done
      sleep 1
      for task in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$task" >/dev/null 2>&1; done
      for container in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$container" >/dev/null 2>&1; done
    fi
    stop_pid containerd
    for shim in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK"); do kill -KILL "$shim" 2>/dev/null; done
    stop_pid kube-apiserver
    stop_pid etcd
  fi
  [[ -x $BIN_DIR/kube-proxy ]] && "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1
  for table in nat filter mangle; do
    # rules that jump to KUBE-/CNI- chains in the built-in chains, then the chains themselves
    iptables -t "$table" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j (KUBE|CNI)-' | grep -vE '^-A (KUBE|CNI)-' | sed 's/^-A/-D/' |
      while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null; done
    for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(\(KUBE\|CNI\)-[^ ]*\)$/\1/p'); do iptables -t "$table" -F "$chain" 2>/dev/null; done
    for chain in $(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(\(KUBE\|CNI\)-[^ ]*\)$/\1/p'); do iptables -t "$table" -X "$chain" 2>/dev/null; done
  done
  for netns in /run/netns/cni-*; do
    [[ -e $netns ]] || continue
    umount "$netns" 2>/dev/null
    rm -f "$netns"
  done
  findmnt -rn -o TARGET | grep "^$WORK/" | sort -r | while read -r target; do umount -l "$target" 2>/dev/null; done
  ip link show cni0 >/dev/null 2>&1 && ip link del cni0
  rm -rf "$WORK"
}

check_clean() {
  local left=()
  pgrep -f "$WORK/" >/dev/null && left+=("processes: $(pgrep -af "$WORK/" | head -5 | tr '\n' ';')")
  findmnt -rn -o TARGET | grep -q "^$WORK" && left+=("mounts under $WORK")
  compgen -G '/run/netns/cni-*' >/dev/null && left+=("network namespaces /run/netns/cni-*")
  for table in nat filter mangle; do
    iptables -t "$table" -S 2>/dev/null | grep -qE '(KUBE|CNI)-' && left+=("iptables $table KUBE-/CNI- rules")
  done
  ip link show cni0 >/dev/null 2>&1 && left+=("interface cni0")
  ip -o link show type veth 2>/dev/null | grep -q 'master cni0' && left+=("veth interfaces on cni0")
  [[ -e $WORK ]] && left+=("$WORK")
  if ((${#left[@]} > 0)); then
    printf 'left behind: %s\n' "${left[@]}" >&2
    return 1
  fi
  echo "clean: no process, mount, netns, iptables chain, interface or directory left" >&2
}

step "tear down the cluster" teardown
step "check nothing is left" check_clean
