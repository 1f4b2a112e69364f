#!/usr/bin/env bash
# Brings up a single-node Kubernetes on this machine under $WORK: private containerd (CRI) with the
# bridge CNI, etcd, kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy (iptables),
# metrics-server behind an APIService, and the KServe CRDs, config and manager (RawDeployment mode).
# Every process is started with its pid in $WORK/pids, so down.sh stops exactly these.
source "$(dirname "$0")/lib.sh"

check_machine() {
  [[ $(id -u) == 0 ]] || die "the cluster needs root (containerd, kubelet, iptables, mounts)"
  local missing=()
  for cmd in curl etcd containerd containerd-shim-runc-v2 runc ctr conntrack iptables openssl ip mount; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  for plugin in bridge host-local loopback portmap; do [[ -x /usr/lib/cni/$plugin ]] || missing+=("/usr/lib/cni/$plugin"); done
  if ((${#missing[@]} > 0)); then
    echo "installing the Debian packages the cluster needs (missing: ${missing[*]})" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server containerd runc containernetworking-plugins conntrack iptables openssl iproute2 >/dev/null ||
      die "cannot install: ${missing[*]} (apt-get install etcd-server containerd runc containernetworking-plugins conntrack iptables)"
  fi
  for bin in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [[ -x $BIN_DIR/$bin ]] || die "missing $BIN_DIR/$bin: run test/cluster/build.sh first"
  done
  [[ -x $MS_BIN && ( -x $KSERVE_BIN || -n ${SKIP_KSERVE:-} ) && -x $PAUSE_BIN ]] || die "missing metrics-server, the KServe manager or pause: run test/cluster/build.sh first"
  # what the kernel must provide (built in or loaded: this script cannot load modules)
  grep -qw overlay /proc/filesystems || die "kernel: no overlay filesystem (containerd's overlayfs snapshotter needs it)"
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || die "kernel: no br_netfilter (/proc/sys/net/bridge missing): Services cannot reach pods on the bridge"
  [[ $(cat /proc/sys/net/bridge/bridge-nf-call-iptables) == 1 ]] || echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables ||
    die "kernel: cannot set net.bridge.bridge-nf-call-iptables=1"
  [[ $(cat /proc/sys/net/ipv4/ip_forward) == 1 ]] || echo 1 >/proc/sys/net/ipv4/ip_forward || die "kernel: cannot enable ip_forward"
  for controller in cpu cpuacct memory pids; do
    awk -v c="$controller" '$1 == c && $4 == 1 { found = 1 } END { exit !found }' /proc/cgroups || die "kernel: cgroup controller '$controller' is not enabled"
  done
  iptables -t nat -L -n >/dev/null 2>&1 || die "kernel: iptables nat table unavailable (kube-proxy needs it)"
  ip link add mlserve-probe0 type bridge 2>/dev/null && ip link del mlserve-probe0 || die "kernel: cannot create a bridge interface (CNI bridge plugin needs it)"
  [[ ! -e $WORK/pids ]] || die "$WORK/pids exists: a cluster may be running; run test/cluster/down.sh first"
}

node_ip() { ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p'; }

make_pki() {
  local pki=$WORK/pki ip
  ip=$(node_ip)
  mkdir -p "$pki"
  cd "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout ca.key -out ca.crt -subj /CN=mlserve-test-ca 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout front-proxy-ca.key -out front-proxy-ca.crt -subj /CN=front-proxy-ca 2>/dev/null
  sign() { # name CN O CA SANs
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2${3:+/O=$3}" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n%s' "${5:+subjectAltName=$5}" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$4.crt" -CAkey "$4.key" -CAcreateserial -days 2 -out "$1.crt" -extfile "$1.ext" 2>/dev/null
  }
  sign apiserver kube-apiserver "" ca "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:10.96.0.1,IP:$ip"
  sign apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ca
  sign front-proxy-client front-proxy-client "" front-proxy-ca
  sign serving "$NODE_NAME" "" ca "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$ip"
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  cd - >/dev/null
  : >"$WORK/tokens.csv"
  for who in admin kube-controller-manager kube-scheduler kubelet kube-proxy; do
    local token user group
    token=$(openssl rand -hex 16)
    case $who in
      admin) user=admin group=system:masters ;;
      kubelet) user=system:node:$NODE_NAME group=system:nodes ;;
      kube-proxy) user=system:kube-proxy group= ;;
      *) user=system:$who group= ;;
    esac
    echo "$token,$user,$user${group:+,\"$group\"}" >>"$WORK/tokens.csv"
    cat >"$WORK/$who.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: mlserve
  cluster: {server: "https://$ip:6443", certificate-authority: "$pki/ca.crt"}
users:
- name: $who
  user: {token: "$token"}
contexts:
- name: mlserve
  context: {cluster: mlserve, user: $who}
current-context: mlserve
KC
  done
}

# start NAME CMD...: runs CMD in its own session, its output in logs/NAME.log, its pid in pids/NAME.pid.
start() {
  local name=$1
  shift
  setsid "$@" >"$WORK/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$WORK/pids/$name.pid"
}

# A FROM-scratch image holding one static binary, imported into containerd (docker-archive format).
import_static_image() {
  local ref=$1 binary=$2 dir
  dir=$(mktemp -d "$WORK/image.XXXXXX")
  mkdir -p "$dir/rootfs"
  cp "$binary" "$dir/rootfs/$(basename "$binary")"
  tar -C "$dir/rootfs" -cf "$dir/layer.tar" .
  local layer_sha
  layer_sha=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/%s"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"mlserve test"}]}' \
    "$(basename "$binary")" "$layer_sha" >"$dir/config.json"
  local config_sha
  config_sha=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
  mv "$dir/config.json" "$dir/$config_sha.json"
  mkdir "$dir/$layer_sha" && mv "$dir/layer.tar" "$dir/$layer_sha/layer.tar"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$config_sha" "$ref" "$layer_sha" >"$dir/manifest.json"
  tar -C "$dir" -c manifest.json "$config_sha.json" "$layer_sha" | ctr_k8s images import --no-unpack=false - >/dev/null
  rm -rf "$dir"
}

start_containerd() {
  mkdir -p "$WORK/containerd" "$WORK/cni/net.d" "$WORK/cni/ipam"
  cat >"$WORK/containerd/config.toml" <<TOML
version = 2
root = "$WORK/containerd/root"
state = "$WORK/containerd/state"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$WORK/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # without it every sandbox fails on this kernel: runc cannot lower oom_score_adj (no CAP_SYS_RESOURCE)
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$WORK/cni/net.d"
TOML
  cat >"$WORK/cni/net.d/10-mlserve.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "mlserve-k8s", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$WORK/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
JSON
  start containerd containerd --config "$WORK/containerd/config.toml"
  wait_for "containerd" 30 ctr -a "$CONTAINERD_SOCK" version
  import_static_image "$PAUSE_IMAGE" "$PAUSE_BIN"
}

start_control_plane() {
  local pki=$WORK/pki ip
  ip=$(node_ip)
  start etcd etcd --name mlserve --data-dir "$WORK/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
    --initial-advertise-peer-urls http://127.0.0.1:2380 --initial-cluster mlserve=http://127.0.0.1:2380
  start kube-apiserver "$BIN_DIR/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --advertise-address="$ip" --bind-address=0.0.0.0 --secure-port=6443 \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" --token-auth-file="$WORK/tokens.csv" --authorization-mode=Node,RBAC \
    --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" --proxy-client-key-file="$pki/front-proxy-client.key" \
    --enable-aggregator-routing=true --profiling=false
  wait_for "kube-apiserver /readyz" 90 kubectl get --raw /readyz
  start kube-controller-manager "$BIN_DIR/kube-controller-manager" --kubeconfig="$WORK/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig="$WORK/kube-controller-manager.kubeconfig" --authorization-kubeconfig="$WORK/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --horizontal-pod-autoscaler-sync-period=5s --profiling=false
  start kube-scheduler "$BIN_DIR/kube-scheduler" --kubeconfig="$WORK/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig="$WORK/kube-scheduler.kubeconfig" --authorization-kubeconfig="$WORK/kube-scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false --profiling=false
}

start_node() {
  local pki=$WORK/pki ip
  ip=$(node_ip)
  mkdir -p "$WORK/kubelet"
  cat >"$WORK/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$pki/serving.crt"
tlsPrivateKeyFile: "$pki/serving.key"
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podCIDR: "$POD_CIDR"
serializeImagePulls: false
YAML
  start kubelet "$BIN_DIR/kubelet" --config="$WORK/kubelet-config.yaml" --kubeconfig="$WORK/kubelet.kubeconfig" \
    --root-dir="$WORK/kubelet" --hostname-override="$NODE_NAME" --node-ip="$ip"
  start kube-proxy "$BIN_DIR/kube-proxy" --kubeconfig="$WORK/kube-proxy.kubeconfig" --hostname-override="$NODE_NAME" \
    --proxy-mode=iptables --cluster-cidr="$POD_CIDR" --conntrack-max-per-core=0 \
    --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256 --iptables-localhost-nodeports=false
  wait_for "node $NODE_NAME Ready" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
  # the apiserver's kubelet client (logs, exec, port-forward) may call the kubelet API
  kubectl create clusterrolebinding mlserve-apiserver-kubelet --clusterrole=system:kubelet-api-admin --user=kube-apiserver-kubelet-client >/dev/null
  wait_for "the default service account" 60 kubectl get serviceaccount default
}

start_metrics_server() {
  local ip
  ip=$(node_ip)
  mkdir -p "$WORK/metrics-server"
  start metrics-server "$MS_BIN" --kubeconfig="$WORK/admin.kubeconfig" --authentication-kubeconfig="$WORK/admin.kubeconfig" \
    --authorization-kubeconfig="$WORK/admin.kubeconfig" --secure-port=4443 --bind-address=0.0.0.0 --cert-dir="$WORK/metrics-server" \
    --kubelet-insecure-tls --kubelet-preferred-address-types=InternalIP --metric-resolution=15s
  kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec: {ports: [{name: https, port: 443, targetPort: 4443}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: metrics-server, namespace: kube-system}
subsets: [{addresses: [{ip: "$ip"}], ports: [{name: https, port: 4443}]}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  service: {name: metrics-server, namespace: kube-system, port: 443}
  group: metrics.k8s.io
  version: v1beta1
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
YAML
  wait_for "metrics.k8s.io available" 90 kubectl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=2s
}

start_kserve() {
  local module
  module=$(cd "$K8S_CACHE" && GOFLAGS=-mod=mod go mod download -json "github.com/kserve/kserve@$KSERVE_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [[ -d $module/config/crd/full ]] || die "no config/crd in github.com/kserve/kserve@$KSERVE_VERSION"
  for crd in "$module"/config/crd/full/serving.kserve.io_*.yaml; do kubectl apply --server-side -f "$crd" >/dev/null; done
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  kubectl create namespace kserve >/dev/null
  # RawDeployment by default, no Istio/Knative ingress objects
  sed -e 's/"defaultDeploymentMode": "Serverless"/"defaultDeploymentMode": "RawDeployment"/' \
    -e 's/"disableIngressCreation": false/"disableIngressCreation": true/' \
    -e 's/"disableIstioVirtualHost": false/"disableIstioVirtualHost": true/' \
    "$module/config/configmap/inferenceservice.yaml" | kubectl apply -f - >/dev/null
  # the webhook server wants a certificate even though no webhook configuration points at it
  local certs=$WORK/kserve/tmp/k8s-webhook-server/serving-certs
  mkdir -p "$certs"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$certs/tls.key" -out "$certs/tls.crt" -subj /CN=kserve-webhook 2>/dev/null
  TMPDIR=$WORK/kserve/tmp POD_NAMESPACE=kserve start kserve-manager "$KSERVE_BIN" --kubeconfig="$WORK/admin.kubeconfig" \
    --metrics-addr=127.0.0.1:18080 --health-probe-addr=127.0.0.1:18081 --webhook-port=19443 --leader-elect=false
  wait_for "KServe manager healthy" 90 curl -fsS http://127.0.0.1:18081/healthz
}

# up.sh FUNCTION: run one step alone (for debugging a running cluster)
if (($# > 0)); then
  "$@"
  exit
fi

mkdir -p "$WORK"
step "check the machine" check_machine
mkdir -p "$WORK/pids" "$WORK/logs"
step "certificates and kubeconfigs" make_pki
step "containerd (CRI) and the pause image" start_containerd
step "etcd, kube-apiserver, controller-manager, scheduler" start_control_plane
step "kubelet and kube-proxy, node Ready" start_node
step "metrics-server and its APIService" start_metrics_server
[[ -n ${SKIP_KSERVE:-} ]] || step "KServe CRDs, config and manager" start_kserve
echo "cluster up: KUBECONFIG=$KUBECONFIG" >&2
