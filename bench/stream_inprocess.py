# Time to the first chunk of predict_stream in-process (the floor for mlserve's first event): loads the
# model as the scorer does and times `next(model.predict_stream(...))`, N times. Prints JSON.
import json
import sys
import time

import mlflow

model = mlflow.pyfunc.load_model(sys.argv[1])
params = json.loads(sys.argv[2])
n = int(sys.argv[3])
times = []
for _ in range(n):
    started = time.perf_counter()
    stream = model.predict_stream({"messages": ["hi"]}, params=params)
    next(stream)
    times.append((time.perf_counter() - started) * 1000)
    stream.close()
times.sort()
print(json.dumps({"p50": times[len(times) // 2], "p99": times[min(len(times) - 1, int(len(times) * 0.99))]}))
