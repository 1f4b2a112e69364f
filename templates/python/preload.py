# mlserve --preload: load MLflow's scoring app (and the model) once, then fork scorers that share it.
#
# Run by mlserve with the model environment's interpreter: `python preload.py <control-socket>`, with the
# variables mlflow's launcher sets (__pyfunc_model_path__, MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT). It
# connects to mlserve's control socket and speaks one JSON object per line:
#
#   to mlserve:   {"event": "loaded"}                       the model is loaded; forks may be asked for
#                 {"event": "unsafe", "reason": "..."}      forking is not safe: mlserve falls back to spawn
#                 {"event": "forked", "id": N, "pid": P}    scorer N runs as process P
#                 {"event": "exited", "pid": P, "code": C, "signal": S}
#   from mlserve: {"op": "fork", "id": N, "socket": PATH}   fork a scorer serving the app on socket PATH
#                 (with "frames": PATH2 under the fast path: it also listens for frames there, mlserve_lean.py)
#
# Each forked scorer runs uvicorn on its Unix socket with the app object this process loaded, exactly as
# `python -m uvicorn --uds PATH --no-access-log mlflow.pyfunc.scoring_server.app:app` would after importing
# it. Nothing outlives mlserve: this process gets SIGKILL when mlserve dies (setpriv), every scorer gets
# SIGKILL when this process dies (prctl PR_SET_PDEATHSIG), and when the control socket closes this process
# kills its scorers and exits. No prediction ever runs here.
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def sibling(name):
    """mlserve's `name`.py beside this file, imported once by its path under a name of its own
    (mlserve_<name>), not through sys.path: a model's own modules may have the same names."""
    module = sys.modules.get(f"mlserve_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"mlserve_{name}", os.path.join(HERE, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


fork_server = sibling("fork_server")


def thread_count():
    """Python threads of this process, however started (threading, or _thread.start_new_thread, which
    threading does not list). Native thread pools (OpenBLAS, OpenMP, MKL), which numpy starts at import,
    are left out: they re-create themselves in a forked child (pthread_atfork). A Python thread the
    model's load starts (a prefetcher, a watcher, a client's heartbeat) would simply be missing in a fork."""
    return len(sys._current_frames())


def open_descriptors():
    """This process's descriptors: {fd: what it is} (Linux /proc; empty elsewhere)."""
    found = {}
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for name in fds:
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # the descriptor listdir itself used, closed meanwhile
            pass
    return found


def written(fd):
    """Whether the descriptor was opened for writing (O_WRONLY or O_RDWR in /proc/self/fdinfo)."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & 3 != 0
    except OSError:
        pass
    return False


def shared_descriptors(before):
    """Descriptors the load opened that every fork would share with the others: sockets (a connection to a
    feature store or a database: the forks' requests and answers would cross), pipes, files opened for
    writing. Read-only files and /dev nodes are left out."""
    shared = []
    for fd, target in sorted(open_descriptors().items()):
        if before.get(fd) == target:
            continue
        if target.startswith(("socket:", "pipe:")) or (target.startswith("/") and not target.startswith("/dev/") and written(fd)):
            shared.append(f"fd {fd} ({target})")
    return shared


def serve(app, socket_path):
    """The forked scorer: uvicorn's own server on its Unix socket, as uvicorn's command line runs it."""
    import uvicorn

    uvicorn.run(app, uds=socket_path, access_log=False)


def preload_server(app):
    """Imports what uvicorn imports when it starts (its protocols, lifespan, middleware, event loop), so that
    every scorer shares those modules instead of importing its own copy after the fork."""
    try:
        import uvicorn.config

        uvicorn.config.Config(app, access_log=False).load()
        try:
            import uvloop  # noqa: F401
        except ImportError:
            pass
    except Exception:  # the scorers import it themselves then
        pass


def scorer(app, message):
    """A forked scorer: its own fresh event loop in uvicorn (and the frame worker under the fast path)."""
    frames = message.get("frames")
    if frames:
        import mlserve_lean

        mlserve_lean.start(frames)
    serve(app, message["socket"])
    if frames:
        mlserve_lean.drain()


def main():
    channel = fork_server.Channel(sys.argv[1])
    before = thread_count()
    descriptors = open_descriptors()
    # Importing the app module loads the model (mlflow.pyfunc.scoring_server.app does it at import;
    # mlserve_lean, in app/ beside this file, does the same through mlserve_fastpath).
    if os.environ.get("MLSERVE_FAST_PATH") == "1":
        sys.path.insert(0, os.path.join(HERE, "app"))
        from mlserve_lean import app
    else:
        from mlflow.pyfunc.scoring_server.app import app
    import uvicorn  # noqa: F401  (imported once here, shared by every scorer)

    after = thread_count()
    if after > before:
        channel.send(
            event="unsafe",
            reason=f"loading the model started {after - before} thread(s), which a forked scorer would not have",
        )
        return 0
    shared = shared_descriptors(descriptors)
    if shared:
        channel.send(
            event="unsafe",
            reason=f"loading the model left open {len(shared)} descriptor(s) every forked scorer would share: {', '.join(shared)}",
        )
        return 0

    preload_server(app)
    return fork_server.serve_forks(channel, {"event": "loaded"}, ("fork",), lambda message: scorer(app, message))


if __name__ == "__main__":
    sys.exit(main())
