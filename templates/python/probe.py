# Run by mlserve with the interpreter it is about to use: prints what that interpreter can serve, as JSON.
# It imports nothing heavy (no mlflow import), so it answers in well under a second.
import importlib.metadata
import importlib.util
import json
import platform
import sys


def version_of(*dists):
    for dist in dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return None


def has_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


print(
    json.dumps(
        {
            "executable": sys.executable,
            "python_version": platform.python_version(),
            "mlflow_version": version_of("mlflow", "mlflow-skinny") if has_module("mlflow") else None,
            "uvicorn": has_module("uvicorn"),
            "gunicorn": has_module("gunicorn"),
            "mlserver": has_module("mlserver") and has_module("mlserver_mlflow"),
        }
    )
)
