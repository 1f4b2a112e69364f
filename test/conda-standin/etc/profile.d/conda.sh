# mlserve conda stand-in: shell integration, like <conda root>/etc/profile.d/conda.sh.
# After `source .../etc/profile.d/conda.sh`, `conda activate NAME|PREFIX` sources the env's
# venv activate script and sets CONDA_PREFIX / CONDA_DEFAULT_ENV; `conda deactivate` undoes it;
# any other `conda ...` runs the stand-in CLI. Needs bash (BASH_SOURCE) or MLFLOW_CONDA_HOME.
if [ -n "${BASH_SOURCE:-}" ]; then
    _CONDA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
else
    _CONDA_ROOT="${MLFLOW_CONDA_HOME:?conda.sh: source it from bash or set MLFLOW_CONDA_HOME}"
fi
export CONDA_EXE="$_CONDA_ROOT/bin/conda"

_conda_standin_prefix() {  # prints the prefix of env $1 (a name or a path)
    case "$1" in
        */*) [ -f "$1/conda-meta/history" ] && (cd "$1" && pwd) && return 0 ;;
        *)
            _dirs="${CONDA_ENVS_PATH:-$_CONDA_ROOT/envs}"
            _old_ifs="$IFS"; IFS=:
            for _d in $_dirs; do
                if [ -n "$_d" ] && [ -f "$_d/$1/conda-meta/history" ]; then
                    IFS="$_old_ifs"; echo "$_d/$1"; return 0
                fi
            done
            IFS="$_old_ifs" ;;
    esac
    echo "EnvironmentNameNotFound: Could not find conda environment: $1" >&2
    return 1
}

conda() {
    case "${1:-}" in
        activate)
            [ -n "${2:-}" ] || { echo "conda activate: the stand-in needs an environment name" >&2; return 2; }
            _p="$(_conda_standin_prefix "$2")" || return 1
            if [ -n "${CONDA_PREFIX:-}" ] && command -v deactivate >/dev/null 2>&1; then deactivate; fi
            . "$_p/bin/activate" || return 1
            export CONDA_PREFIX="$_p" CONDA_DEFAULT_ENV="$2" CONDA_SHLVL=1 ;;
        deactivate)
            if command -v deactivate >/dev/null 2>&1; then deactivate; fi
            unset CONDA_PREFIX CONDA_DEFAULT_ENV; CONDA_SHLVL=0 ;;
        *) "$CONDA_EXE" "$@" ;;
    esac
}
