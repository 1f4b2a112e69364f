"""Saves the model of bench/llm-batch.js: a stand-in for an LLM that takes a fixed time per call.

Usage: python llm_model.py <output-dir> <seconds>

A PythonModel whose predict sleeps <seconds> (the time is saved in the model's config) and answers
deterministically with the last message's content echoed back, in the shape of a chat completion. Its
input example is MLflow's unified LLM input ({"messages": [...]}), so the signature is inferred from it
and the scoring server parses such a body as unified LLM input (`is_unified_llm_input`: a top-level
"messages" key) and answers without the {"predictions": ...} wrapper. No LLM is called.
"""

import sys
import time
from importlib.metadata import version

import mlflow

EXAMPLE = {"messages": [{"role": "user", "content": "hi"}]}


def last_content(model_input):
    # With the inferred signature mlflow hands predict a DataFrame with a "messages" column; a dict
    # (no signature) is handled too.
    messages = model_input["messages"]
    if hasattr(messages, "iloc"):
        messages = messages.iloc[0]
    return str(messages[-1]["content"]) if len(messages) else ""


class SlowLLM(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.seconds = float(context.model_config["seconds"])

    def predict(self, context, model_input, params=None):
        time.sleep(self.seconds)
        content = last_content(model_input)
        return {
            "object": "chat.completion",
            "model": "slow-llm",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {content}"}, "finish_reason": "stop"}],
        }


def main(out, seconds):
    mlflow.pyfunc.save_model(
        out,
        python_model=SlowLLM(),
        model_config={"seconds": float(seconds)},
        input_example=EXAMPLE,
        pip_requirements=[f"{dist}=={version(dist)}" for dist in ("mlflow", "cloudpickle", "numpy", "pandas")],
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
