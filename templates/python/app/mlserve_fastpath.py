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
# mlflow's app, with the body replayed; an exception from invocations() is handed to the call mlflow's app
# makes (REPLAY), so predict runs once. The mlflow versions whose app it was checked against are the
# FastAPI scorers (mlflow >= 2.21): `fast_path_refusal()` names what does not match, and then `app` is
# mlflow's own app, unchanged.
#
# Streaming: a JSON request with `"stream": true` (at the top level, or in `params`) to a model that
# implements predict_stream is answered as server-sent events, in MLflow AgentServer's form: one
# `data: <json>\n\n` per chunk (each chunk serialised as mlflow serialises an unwrapped prediction), then
# `data: [DONE]\n\n`. The input is parsed and validated by mlflow's own functions; a request that fails
# before the first chunk gets mlflow's error answer, not a stream; an error after it is one
# `data: {"error": <mlflow's error envelope>}` event, then `[DONE]`. A client that goes away closes the
# generator (its `finally` runs) after the chunk in progress. Each stream steps its generator on a
# thread of a pool of its own (MLSERVE_MAX_STREAMS threads), so many slow streams progress at once.
import asyncio
import contextvars
import inspect
import io
import json
import os
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor

from mlflow.pyfunc import scoring_server

# What mlflow's `init` builds: one HTTP middleware (the request timeout) and these routes.
EXPECTED_ROUTES = {("/ping", "GET"), ("/health", "GET"), ("/version", "GET"), ("/invocations", "POST")}
INVOCATIONS_PARAMETERS = ["data", "content_type", "model", "input_schema"]

# The outcome of a first invocations() call (the fast path's, or the lean protocol's), handed to the one
# MLflow's app makes for the same request when that app answers it: predict never runs twice, and the
# answer is MLflow's app's by construction. build() puts replaying_invocations in scoring_server's place.
REPLAY = contextvars.ContextVar("mlserve_replay", default=None)
original_invocations = scoring_server.invocations


def replaying_invocations(data, content_type, model, input_schema):
    outcome = REPLAY.get()
    if outcome is None:
        return original_invocations(data, content_type, model, input_schema)
    REPLAY.set(None)
    kind, value = outcome
    if kind == "raise":
        raise value
    return value


def route_refusal(mlflow_app):
    """Why `mlflow_app`'s /invocations would not get a replayed outcome (its route must call
    scoring_server.invocations by that module's name), or None."""
    route = next((r for r in mlflow_app.routes if getattr(r, "path", "") == "/invocations"), None)
    inner = getattr(getattr(route, "endpoint", None), "__wrapped__", None)
    code = getattr(inner, "__code__", None)
    if code is None or "invocations" not in code.co_names or getattr(inner, "__globals__", None) is not vars(scoring_server):
        return "mlflow's /invocations route does not call scoring_server.invocations as expected"
    return None


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
    # What the fast path cannot answer goes to mlflow's app, which must get the first call's outcome back.
    return route_refusal(mlflow_app)


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


async def disconnected(receive):
    """Returns once the client has gone away (the request body was read already)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


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


def stream_request(body, content_type):
    """The request as predict_stream takes it, when it asks for a stream: (body without the top-level
    "stream" flag, True); else (body, False). Only for a JSON object with "stream": true at the top level
    or in "params"."""
    if content_type.split(";", 1)[0].strip() != "application/json" or b'"stream"' not in body:
        return body, False
    try:
        document = json.loads(body)
    except ValueError:
        return body, False
    if not isinstance(document, dict):
        return body, False
    params = document.get("params")
    if document.get("stream") is True:
        del document["stream"]
        return json.dumps(document).encode(), True
    if isinstance(params, dict) and params.get("stream") is True:
        return body, True
    return body, False


DONE = object()


def next_chunk(generator):
    """One step of the model's generator, on a stream thread: the chunk, or DONE."""
    try:
        return next(generator)
    except StopIteration:
        return DONE


def event(payload):
    return b"data: " + payload + b"\n\n"


def fast_app_for(mlflow_app, model, timeout):
    from fastapi.responses import Response
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import BAD_REQUEST

    invocations = original_invocations
    input_schema = model.metadata.get_input_schema()
    streamable = getattr(model, "_predict_stream_fn", None) is not None
    streams = ThreadPoolExecutor(max_workers=int(os.environ.get("MLSERVE_MAX_STREAMS", "1000")), thread_name_prefix="mlserve-stream")

    def chunk_json(chunk):
        out = io.StringIO()
        scoring_server.unwrapped_predictions_to_json(chunk, out)
        return out.getvalue().encode()

    def as_mlflow_error(error):
        """An exception from the model as mlflow's invocations() reports one from predict."""
        if isinstance(error, MlflowException):
            return error
        return MlflowException(
            message=(
                "Encountered an unexpected error while evaluating the model. Verify"
                " that the serialized input Dataframe is compatible with the model for"
                " inference."
            ),
            error_code=BAD_REQUEST,
            stack_trace="".join(traceback.format_exception(error)),
        )

    def start_stream(body):
        """Parses the request as /invocations does, starts predict_stream and takes its first step (which
        validates the input): (generator, first chunk or DONE), in one thread hop."""
        parsed = scoring_server._parse_json_data(body, model.metadata, input_schema)
        generator = model.predict_stream(parsed.data, params=parsed.params)
        return generator, next_chunk(generator)

    async def stream(scope, receive, send, body):
        loop = asyncio.get_running_loop()
        # Every step of one stream runs in one context (mlflow's prediction context is a ContextVar that
        # the generator sets and resets across steps), whichever pool thread runs it.
        context = contextvars.copy_context()

        def step(function, *args):
            return loop.run_in_executor(streams, context.run, function, *args)

        generator = None
        try:
            # A failure before the first chunk (parsing, validation, the model) is an ordinary error answer.
            generator, first = await asyncio.wait_for(step(start_stream, body), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            response = Response(content="Request processing time exceeded limit", status_code=504, media_type="application/json")
            return await response(scope, receive, send)
        except Exception as e:
            error = as_mlflow_error(e)
            response = Response(content=error.serialize_as_json(), status_code=error.get_http_status_code(), media_type="application/json")
            return await response(scope, receive, send)

        gone = asyncio.ensure_future(disconnected(receive))
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")],
                }
            )
            chunk = first
            while chunk is not DONE:
                await send({"type": "http.response.body", "body": event(chunk_json(chunk)), "more_body": True})
                following = asyncio.ensure_future(step(next_chunk, generator))
                await asyncio.wait({following, gone}, return_when=asyncio.FIRST_COMPLETED)
                if not following.done():
                    # The client went away: the step in progress ends, then the generator is closed.
                    await asyncio.wait({following})
                    return None
                try:
                    chunk = following.result()
                except Exception as error:
                    envelope = as_mlflow_error(error).serialize_as_json().encode()
                    await send({"type": "http.response.body", "body": event(b'{"error": ' + envelope + b"}"), "more_body": True})
                    break
            await send({"type": "http.response.body", "body": event(b"[DONE]"), "more_body": False})
        except OSError:
            return None
        finally:
            gone.cancel()
            await step(generator.close)
        return None

    async def app(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/invocations" or scope.get("root_path"):
            return await mlflow_app(scope, receive, send)
        content_type = header(scope, b"content-type")
        if content_type is None or header(scope, b"content-length") is None:
            return await mlflow_app(scope, receive, send)
        body = await read_body(receive)
        if body is None:
            return None
        if streamable:
            stream_body, wanted = stream_request(body, content_type)
            if wanted:
                return await stream(scope, receive, send, stream_body)
        try:
            result = await asyncio.wait_for(asyncio.to_thread(invocations, body, content_type, model, input_schema), timeout)
        except (asyncio.TimeoutError, TimeoutError):
            # mlflow's timeout middleware's answer.
            response = Response(content="Request processing time exceeded limit", status_code=504, media_type="application/json")
        except MlflowException as e:
            # What _async_catch_mlflow_exception answers.
            response = Response(content=e.serialize_as_json(), status_code=e.get_http_status_code(), media_type="application/json")
        except Exception as error:
            # Not a path this module reproduces: mlflow's app answers it (and logs it) itself, its
            # invocations() call raising this same error (predict does not run again).
            token = REPLAY.set(("raise", error))
            try:
                return await mlflow_app(scope, replaying(body, receive), send)
            finally:
                REPLAY.reset(token)
        else:
            response = Response(content=result.response, status_code=result.status, media_type=result.mimetype)
        await response(scope, receive, send)
        return None

    return app


# What mlflow.pyfunc.scoring_server.app says (whitespace aside) in the versions this module was checked
# against: the module builds the same app from the same model itself.
APP_MODULE_SOURCE = (
    "import os\n"
    "from mlflow.pyfunc import scoring_server\n"
    "app = scoring_server.init(\n"
    "    scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH])\n"
    ")\n"
)


def app_module_refusal():
    """Why mlflow's app module cannot be reproduced here, checked before any model is loaded."""
    import importlib.util

    spec = importlib.util.find_spec("mlflow.pyfunc.scoring_server.app")
    try:
        with open(spec.origin, encoding="utf-8") as f:
            source = f.read()
    except (AttributeError, OSError, TypeError) as e:
        return f"mlflow's scoring app module could not be read ({e})"
    if "".join(source.split()) != "".join(APP_MODULE_SOURCE.split()):
        return "mlflow's scoring app module builds its app in a way this module was not checked against"
    return None


# The model and mlflow's own app, once build() made them (the lean worker, mlserve_lean.py, serves them too).
served = None


def build():
    """(app, refusal): the fast app, or mlflow's own app with the reason the fast path was refused."""
    global served
    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

    refusal = app_module_refusal()
    if refusal is not None:
        # mlflow's own module, as `uvicorn mlflow.pyfunc.scoring_server.app:app` would import it.
        from mlflow.pyfunc.scoring_server.app import app as mlflow_module_app

        return mlflow_module_app, refusal
    model = scoring_server.load_model_with_mlflow_config(os.environ[scoring_server._SERVER_MODEL_PATH])
    mlflow_app = scoring_server.init(model)
    served = (model, mlflow_app)
    refusal = fast_path_refusal(mlflow_app)
    if refusal is not None:
        return mlflow_app, refusal
    scoring_server.invocations = replaying_invocations
    return fast_app_for(mlflow_app, model, MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get()), None


app, refusal = build()
if refusal is not None:
    print(f"mlserve: the fast path is off for this model: {refusal}; MLflow's scoring app serves every request", file=sys.stderr, flush=True)
