#!/usr/bin/env bash
# Quick check of the conda stand-in: bash test/conda-standin/selftest.sh  (needs network or a
# pip cache for six==1.16.0, and python 3.11 from pyenv or as python3.11 on PATH; ~30 s).
# Runs once with whatever is on PATH; put a uv on PATH to exercise the uv installer.
set -u
here="$(cd "$(dirname "$0")" && pwd)"; conda="$here/bin/conda"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
export CONDA_ENVS_PATH="$work/envs"
fails=0; passes=0
check() { if eval "$2" >"$work/out" 2>&1; then passes=$((passes+1)); else fails=$((fails+1)); echo "FAIL: $1"; sed 's/^/    /' "$work/out" | tail -20; fi; }

cat > "$work/conda.yaml" <<'YAML'
name: mlflow-env
channels: [conda-forge]
dependencies:
  - python=3.11.7
  - pip<=23.3
  - pip:
      - six==1.16.0
YAML
printf 'dependencies:\n- python=3.11\n- pip:\n  - does-not-exist-dep==abc\n' > "$work/bad.yaml"
printf 'dependencies:\n  - python=3.99.1\n' > "$work/nopy.yaml"

check "--version" '"$conda" --version | grep -q "^conda 24"'
check "create" '"$conda" env create -n e1 --file "$work/conda.yaml"'
check "listed" '"$conda" env list --json | python3 -c "import json,sys; e=json.load(sys.stdin)[\"envs\"]; assert e[0]==\"$here\" and \"$work/envs/e1\" in e, e"'
check "six importable" '"$work/envs/e1/bin/python" -c "import six; assert six.__version__ == \"1.16.0\""'
check "exists twice" '! "$conda" env create -n e1 -f "$work/conda.yaml" && "$conda" env create -n e1 -f "$work/conda.yaml" 2>&1 | grep -q "prefix already exists"'
check "remove" '"$conda" remove --yes --name e1 --all && [ ! -e "$work/envs/e1" ]'
check "remove missing" '"$conda" remove -y -n e1 --all 2>&1 | grep -q EnvironmentLocationNotFound; [ "${PIPESTATUS[0]}" = 1 ]'
check "bad pip dep" '"$conda" env create -n bad -f "$work/bad.yaml"; [ $? = 1 ] && [ ! -e "$work/envs/bad" ]'
check "no python" '"$conda" env create -n nopy -f "$work/nopy.yaml" 2>&1 | grep -qz "ResolvePackageNotFound:.*python=3.99.1"; [ "${PIPESTATUS[0]}" = 1 ] && [ ! -e "$work/envs/nopy" ]'
check "plain create" '"$conda" create --channel conda-forge --yes --override-channels -n plain python && "$work/envs/plain/bin/python" -c ""'
check "unsupported" '"$conda" install six; [ $? = 2 ]'
echo "conda-standin: $passes passed, $fails failed"
[ "$fails" = 0 ]
