# mlserve's fast path: MLflow's own scoring app, with a successful POST /invocations answered without
# FastAPI's routing and middleware around it.
#
# Imported instead of `mlflow.pyfunc.scoring_server.app` (spawn: `uvicorn mlserve_fastpath:app`; preload:
# the loader imports it). It loads the model exactly as that module does (`load_model_with_mlflow_config`
# on __pyfunc_model_path__, then mlflow's own `init`), keeps mlflow's app for everything, and puts a thin
# ASGI function in front of it. For POST /invocations that function does what mlflow's route does: it reads
# the body, runs mlflow's own `invocations(data, content_type, model, input_schema)` in a thread under the
# scoring timeout, and answers with a starlette Response built as the route and its decorators build it.
# The answer's bytes are made inside `invocations`, so they are mlflow's. What it cannot answer that way
# (no Content-Type, a chunked or streamed request, an exception that is not an MlflowException) goes to
# mlflow's app, with the body replayed. The mlflow versions whose app it was checked against are the
# FastAPI scorers (mlflow >= 2.21): `fast_path_refusal()` names what does not match, and then `app` is
# mlflow's own app, unchanged.
import asyncio
import inspect
import os
import sys

from mlflow.pyfunc import scoring_server

# What mlflow's `init` builds: one HTTP middleware (the request timeout) and these routes.
EXPECTED_ROUTES = {("/ping", "GET"), ("/health", "GET"), ("/version", "GET"), ("/invocations", "POST")}
INVOCATIONS_PARAMETERS = ["data", "content_type", "model", "input_schema"]


def fast_path_refusal(mlflow_app):
    """Why the fast path cannot prove it answers as `mlflow_app` does, or None when it can."""
    invocations = getattr(scoring_server, "invocations", None)
    if invocations is None or list(inspect.signature(invocations).parameters) != INVOCATIONS_PARAMETERS:
        return "mlflow's scoring server has no invocations(data, content_type, model, input_schema)"
    if not hasattr(scoring_server, "_async_catch_mlflow_exception"):
        return "mlflow's /invocations route is not wrapped as expected"
    routes = set()
    for route in getattr(mlflow_app, "routes", []):
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        if path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"):
            continue
        routes.update((path, method) for method in methods if method != "HEAD")
    if routes != EXPECTED_ROUTES:
        return f"mlflow's scoring app has other routes than {sorted(EXPECTED_ROUTES)}: {sorted(routes)}"
    middleware = getattr(mlflow_app, "user_middleware", None)
    if middleware is None or len(middleware) != 1:
        return f"mlflow's scoring app has {len(middleware or [])} middlewares (expected only its request timeout)"
    # FastAPI's own layers around the app: a body size limit (off unless set) and OpenTelemetry (off
    # unless configured). Either one on would see requests the fast path answers: leave them to the app.
    if getattr(mlflow_app, "max_body_size", None) is not None:
        return "FastAPI's max_body_size is set on mlflow's scoring app"
    telemetry = getattr(mlflow_app, "_native_telemetry", None)
    enabled = getattr(telemetry, "enabled", None)
    if callable(enabled) and enabled():
        return "FastAPI's OpenTelemetry instrumentation is on (OTEL_* variables): its spans need mlflow's own app"
    return None


def header(scope, name):
    """The first value of a request header, as starlette's Headers.get returns it (None when absent)."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def read_body(receive):
    """The whole request body; None when the client went away first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body, receive):
    """A receive() that hands over `body` once, then waits on the real channel (for a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def fast_app_for(mlflow_app, model, timeout):
    from fastapi.responses import Response
    from mlflow.exceptions import MlflowException

    invocations = scoring_server.invocations
    input_schema = model.metadata.get_input_schema()

    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/invocations" or scope.get("root_path"):
            return await mlflow_app(scope, receive, send)
        content_type = header(scope, b"content-type")
        if content_type is None or header(scope, b"content-length") is None:
            return await mlflow_app(scope, receive, send)
        body = await read_body(receive)
        if body is None:
            return None
        try:
            result = await asyncio.wait_for(asyncio.to_thread(invocations, body, content_type, model, input_schema), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            # mlflow's timeout middleware's answer.
            response = Response(content="Request processing time exceeded limit", status_code=504, media_type="application/json")
        except MlflowException as e:
            # What _async_catch_mlflow_exception answers.
            response = Response(content=e.serialize_as_json(), status_code=e.get_http_status_code(), media_type="application/json")
        except Exception:
            # Not a path this module reproduces: mlflow's app answers it (and logs it) itself.
            return await mlflow_app(scope, replaying(body, receive), send)
        else:
            response = Response(content=result.response, status_code=result.status, media_type=result.mimetype)
        await response(scope, receive, send)
        return None

    return app


def build():
    """(app, refusal): the fast app, or mlflow's own app with the reason the fast path was refused."""
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

    model = scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH])
    mlflow_app = scoring_server.init(model)
    refusal = fast_path_refusal(mlflow_app)
    if refusal is not None:
        return mlflow_app, refusal
    return fast_app_for(mlflow_app, model, MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()), None


app, refusal = build()
if refusal is not None:
    print(f"mlserve: the fast path is off for this model: {refusal}; MLflow's scoring app serves every request", file=sys.stderr, flush=True)
