#!/usr/bin/env bash
# Builds the cluster's binaries from the Go module proxy (pinned tags) into the test cache, once per
# version: the Kubernetes components and kubectl, the pause sandbox binary, metrics-server, the KServe
# manager. Go's own module and build caches stay in their defaults.
source "$(dirname "$0")/lib.sh"
need go "Go is needed to build Kubernetes from the module proxy"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

K8S_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

build_k8s() {
  local work=$K8S_CACHE/$K8S_VERSION/src
  mkdir -p "$work" "$BIN_DIR"
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local staging=v0.${K8S_VERSION#v1.}
  local gomod
  gomod=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
  {
    echo "module mlserve.test/k8sbuild"
    echo
    echo "go 1.23"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    # every staging repo that kubernetes replaces with ./staging/... comes from its own tag instead
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$gomod"
  } >"$work/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in "${K8S_COMPONENTS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
  } >"$work/tools.go"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  local pkgs=()
  for c in "${K8S_COMPONENTS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$work" && go build -trimpath -ldflags "$ld" -o "$BIN_DIR/" "${pkgs[@]}")
}

build_pause() {
  local work=$K8S_CACHE/pause/src
  mkdir -p "$work" "$(dirname "$PAUSE_BIN")"
  cat >"$work/go.mod" <<'GOMOD'
module mlserve.test/pause

go 1.21
GOMOD
  cat >"$work/main.go" <<'GO'
// The sandbox (pause) process: waits for a signal, reaps nothing else.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
GO
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$PAUSE_BIN" .)
}

build_metrics_server() {
  local work=$K8S_CACHE/metrics-server-$METRICS_SERVER_VERSION/src
  mkdir -p "$work" "$(dirname "$MS_BIN")"
  printf 'module mlserve.test/msbuild\n\ngo 1.22\n\nrequire sigs.k8s.io/metrics-server %s\n' "$METRICS_SERVER_VERSION" >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "sigs.k8s.io/metrics-server/cmd/metrics-server"\n' >"$work/tools.go"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$MS_BIN" sigs.k8s.io/metrics-server/cmd/metrics-server)
}

build_kserve() {
  local work=$K8S_CACHE/kserve-$KSERVE_VERSION/src
  mkdir -p "$work" "$(dirname "$KSERVE_BIN")"
  local gomod
  gomod=$(cd "$work" && go mod download -json "github.com/kserve/kserve@$KSERVE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [[ -f $gomod ]] || die "could not download github.com/kserve/kserve@$KSERVE_VERSION from the Go module proxy"
  {
    printf 'module mlserve.test/kservebuild\n\ngo 1.23\n\nrequire github.com/kserve/kserve %s\n\n' "$KSERVE_VERSION"
    # carry over kserve's own replace directives that point at versions (not local paths)
    awk '/^replace \(/{inb=1;next} inb&&/^\)/{inb=0;next} inb&&/=>/&&$0!~/=> \.\//{print "replace " $0} /^replace [^(]/&&$0!~/=> \.\//{print}' "$gomod"
  } >"$work/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/kserve/kserve/cmd/manager"\n' >"$work/tools.go"
  (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$KSERVE_BIN" github.com/kserve/kserve/cmd/manager)
}

have_all() {
  for c in "${K8S_COMPONENTS[@]}"; do [[ -x $BIN_DIR/$c ]] || return 1; done
}

if have_all; then echo "kubernetes $K8S_VERSION binaries: cached in $BIN_DIR" >&2; else step "build kubernetes $K8S_VERSION" build_k8s; fi
if [[ -x $PAUSE_BIN ]]; then echo "pause: cached" >&2; else step "build pause" build_pause; fi
if [[ -x $MS_BIN ]]; then echo "metrics-server: cached" >&2; else step "build metrics-server $METRICS_SERVER_VERSION" build_metrics_server; fi
if [[ -x $KSERVE_BIN ]]; then echo "kserve manager: cached" >&2; else step "build kserve manager $KSERVE_VERSION" build_kserve; fi
