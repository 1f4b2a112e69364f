# mlserve's lean protocol: POST /invocations as length-prefixed frames on a Unix socket of its own, answered
# by mlflow's `invocations()`, with no HTTP server, router or middleware around it.
#
# The scorer process is the fast path's (mlserve_fastpath.py: MLflow's app under uvicorn, for /ping, /health,
# /version, the docs and streams); this module adds a frame listener beside it (spawn: uvicorn imports
# `mlserve_lean:app` with MLSERVE_FRAME_SOCKET set; preload: each fork calls start()). The frames, and which
# requests run at once, are mlserve_lanes.py's and mlserve_gate.py's. An answer frame's kind is 0 for the
# answer (meta: JSON [name, value, ...], the headers before uvicorn's date/server), 1 when nothing ran and
# the request goes over HTTP instead (a stream asked of a streaming model), or 2 when it was cancelled
# before it started.
#
# A successful `invocations()` (status 200) is answered with the headers and body starlette's Response makes
# of it, as mlflow's route does. Anything else (an exception, another status, another route, no content
# type) goes to MLflow's own ASGI app in this process, which calls `invocations()` again: that call gets the
# first call's outcome back (a ContextVar), so predict never runs twice and the bytes of every error are
# mlflow's by construction.
import asyncio
import atexit
import os
import socket
import sys
import threading
import time
import traceback

import mlserve_fastpath
import mlserve_signatures
from mlserve_gate import Gate
from mlserve_lanes import ANSWER, APP_CRASHED, PASS, Lane
from mlserve_fastpath import app, refusal  # noqa: F401  (uvicorn serves `mlserve_lean:app`)
# The outcome of the first invocations() call, handed to the one MLflow's app makes (mlserve_fastpath.py installs
# replaying_invocations; route_refusal is re-exported for the differential test).
from mlserve_fastpath import REPLAY, original_invocations, replaying_invocations, route_refusal  # noqa: F401


def lean_refusal():
    """Why the lean protocol cannot prove it answers as MLflow's app does, or None when it can."""
    if mlserve_fastpath.refusal is not None or mlserve_fastpath.served is None:
        return f"the fast path is off ({mlserve_fastpath.refusal})"
    return route_refusal(mlserve_fastpath.served[1])


class Lean:
    """Answers one framed request: (kind, status, headers [(name, value)], body bytes)."""

    def __init__(self, model, mlflow_app):
        from fastapi.responses import Response

        self.response = Response
        self.model = model
        self.mlflow_app = mlflow_app
        self.input_schema = model.metadata.get_input_schema()
        self.streamable = getattr(model, "_predict_stream_fn", None) is not None
        self.loop = None

    def handle(self, method, path, query, headers, body):
        content_type = None
        if method == "POST" and path == "/invocations":
            for i in range(0, len(headers) - 1, 2):
                if headers[i].lower() == "content-type":
                    content_type = headers[i + 1]
                    break
        if content_type is None:
            return self.in_app(method, path, query, headers, body, None)
        if self.streamable and mlserve_fastpath.stream_request(body, content_type)[1]:
            return PASS, 0, [], b""
        try:
            result = original_invocations(body, content_type, self.model, self.input_schema)
        except Exception as error:
            return self.in_app(method, path, query, headers, body, ("raise", error))
        if result.status != 200:
            return self.in_app(method, path, query, headers, body, ("return", result))
        response = self.response(content=result.response, status_code=200, media_type=result.mimetype)
        return ANSWER, 200, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers], response.body

    def in_app(self, method, path, query, headers, body, outcome):
        """MLflow's own app answers, in this process, on a loop thread of its own."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="mlserve-lean-app", daemon=True).start()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "root_path": "",
            "query_string": query.encode("latin-1"),
            "headers": [(headers[i].lower().encode("latin-1"), headers[i + 1].encode("latin-1")) for i in range(0, len(headers) - 1, 2)],
            "client": None,
            "server": None,
            "state": {},
        }
        return asyncio.run_coroutine_threadsafe(self.run_app(scope, body, outcome), self.loop).result()

    async def run_app(self, scope, body, outcome):
        REPLAY.set(outcome)
        messages = []

        async def no_disconnect():
            # mlserve has the client: past the body, the app hears nothing more.
            await asyncio.Event().wait()

        async def send(message):
            messages.append(message)

        try:
            await self.mlflow_app(scope, mlserve_fastpath.replaying(body, no_disconnect), send)
        except Exception:
            # As uvicorn logs it.
            print("ERROR:    Exception in ASGI application\n" + traceback.format_exc(), file=sys.stderr, flush=True)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None:
            return (ANSWER, *APP_CRASHED)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        return ANSWER, start["status"], headers, b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


gate = Gate()


def start(path):
    """Listens for frames on `path` (before uvicorn listens on its own socket); False, with a log line
    saying why, when this model or mlflow version is not one the lean protocol can prove."""
    why = lean_refusal()
    if why is not None:
        print(f"mlserve: the lean protocol is off for this model: {why}; /invocations goes over HTTP", file=sys.stderr, flush=True)
        return False
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(256)
    except OSError as error:
        listener.close()
        print(f"mlserve: the lean protocol is off for this model: cannot listen on {path} ({error}); /invocations goes over HTTP", file=sys.stderr, flush=True)
        return False
    mlserve_signatures.install()
    lean = Lean(*mlserve_fastpath.served)

    def accept():
        while True:
            conn, _ = listener.accept()
            Lane(conn, gate, lean.handle).start()

    threading.Thread(target=accept, name="mlserve-lean-accept", daemon=True).start()
    return True


def drain(seconds=30.0):
    """Waits (bounded) for framed requests in progress: the process is about to exit."""
    deadline = time.monotonic() + seconds
    while gate.running > 0 and time.monotonic() < deadline:
        time.sleep(0.01)


if os.environ.get("MLSERVE_FRAME_SOCKET"):
    if start(os.environ["MLSERVE_FRAME_SOCKET"]):
        atexit.register(drain)
