"""Regenerates examples/sklearn-iris: a real scikit-learn model saved by real mlflow.

Usage (any Python with mlflow and scikit-learn; the pins below are the ones the example was saved with):
    python -m venv /tmp/iris-env && /tmp/iris-env/bin/pip install mlflow==3.17.2 scikit-learn==1.9.1
    /tmp/iris-env/bin/python examples/train_iris.py
"""

import os
import shutil

import mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "sklearn-iris")


def main():
    # load_iris reads the copy bundled with scikit-learn: no download.
    iris = load_iris(as_frame=True)
    features = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=500).fit(features, iris.target)
    shutil.rmtree(OUT, ignore_errors=True)
    # input_example makes mlflow infer the signature and write serving_input_example.json.
    mlflow.sklearn.save_model(model, OUT, input_example=features.iloc[[0, 60, 120]])
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
