# mlserve's environment loader (several models): MLflow's scoring server and the common libraries
# imported once, no model loaded. Each model of this environment is loaded in a fork of it, which then is
# that model's --preload loader (preload.py: it loads the model and forks the model's scorers), so a cold
# load pays only the model's own unpickling, not Python's start and MLflow's import.
#
# Run by mlserve with the environment's interpreter: `python env_loader.py <control-socket>`. JSON lines:
#
#   to mlserve:   {"event": "ready", "imported": [...]}          imports done; loads may be asked for
#                 {"event": "forked", "id": N, "pid": P}         model loader N runs as process P
#                 {"event": "exited", "pid": P, "code": C, "signal": S, "error": "..."}
#                 (error: the last line of the exception that ended a fork, if one did: its output is
#                 mixed with its siblings', so mlserve cannot take it from there)
#   from mlserve: {"op": "load", "id": N, "control": PATH, "env": {NAME: VALUE}}
#                 fork; the fork sets env (__pyfunc_model_path__, ...) and runs preload.py's main on PATH
#                 (-w N: the model is loaded once there and its N scorers are forked from it)
#                 {"op": "serve", "id": N, "socket": PATH, "env": {NAME: VALUE}}
#                 fork; the fork sets env, loads the model and serves it on PATH itself (-w 1: one
#                 process per model, no loader between); with "frames": PATH2 (the fast path) it also
#                 listens for frames there, as preload.py's forks do (mlserve_lean.py)
#
# Nothing outlives mlserve: this process gets SIGKILL when mlserve dies (setpriv and the exit watchdog),
# each model loader when this process dies (PR_SET_PDEATHSIG), each scorer when its model loader dies.
import importlib
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Imported before any model: MLflow's scoring server (and what it serves with), and the libraries most
# models unpickle into. A module that is not installed is skipped. MLSERVE_LOADER_IMPORTS adds more.
COMMON = [
    "numpy",
    "pandas",
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.pyfunc.scoring_server",
    "mlflow.models",
    "mlflow.sklearn",
    "fastapi",
    "uvicorn",
    "uvicorn.config",
    "uvicorn.main",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.protocols.http.httptools_impl",
    "uvloop",
    "httptools",
    "scipy",
    "sklearn",
    "sklearn.base",
    "sklearn.utils",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.tree",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "skops.io",
]


def load_preload():
    """preload.py as a module of its own name (its directory is not put on sys.path: a model's own
    `import probe` must not find mlserve's files)."""
    spec = importlib.util.spec_from_file_location("mlserve_preload", os.path.join(HERE, "preload.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def warm_caches():
    """Fills what every model's load computes the same way in this environment: mlflow's map of installed
    packages to modules (read for its requirements check on each load; 0.7 s of a cold load otherwise).
    A private helper of mlflow's, so any failure is ignored: each load then computes it itself."""
    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_modules_to_packages_map()
    except Exception:
        pass


def import_common():
    extra = [name for name in os.environ.get("MLSERVE_LOADER_IMPORTS", "").split(",") if name.strip()]
    imported = []
    for name in COMMON + extra:
        try:
            importlib.import_module(name.strip())
            imported.append(name.strip())
        except Exception:  # not installed, or it cannot be imported here: the model imports it itself
            pass
    return imported


def serve_model(preload, socket_path, frames=None):
    """A scorer of its own: the app module loads the model (as preload.py's main does), uvicorn serves it;
    with `frames`, POST /invocations is also answered as frames on that socket (the lean protocol)."""
    if os.environ.get("MLSERVE_FAST_PATH") == "1":
        sys.path.insert(0, os.path.join(HERE, "app"))
        from mlserve_fastpath import app
    else:
        frames = None
        from mlflow.pyfunc.scoring_server.app import app
    if frames:
        import mlserve_lean

        mlserve_lean.start(frames)
    preload.serve(app, socket_path)
    if frames:
        mlserve_lean.drain()
    return 0


def model(preload, message):
    """A fork: with the message's variables set, the model's loader (preload.py's main from here on) or
    its only scorer."""
    os.environ.update(message.get("env") or {})
    if message["op"] == "serve":
        return serve_model(preload, message["socket"], message.get("frames"))
    sys.argv = [os.path.join(HERE, "preload.py"), message["control"]]
    return preload.main()


def main():
    preload = load_preload()
    channel = preload.fork_server.Channel(sys.argv[1])
    threads = preload.thread_count()
    imported = import_common()
    warm_caches()
    if preload.thread_count() > threads:
        channel.send(event="unsafe", reason="importing the common libraries started Python threads, which a fork would not have")
        return 0
    ready = {"event": "ready", "imported": imported}
    return preload.fork_server.serve_forks(channel, ready, ("load", "serve"), lambda message: model(preload, message), report_errors=True)


if __name__ == "__main__":
    sys.exit(main())
