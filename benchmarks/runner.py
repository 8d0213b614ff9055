"""Times one framework on a list of workloads; run as its own process by ``benchmarks``.

Usage: ``python -m benchmarks.runner FRAMEWORK MIN_SECONDS`` reads one JSON workload per
line on stdin and answers each with a line holding the seconds per call (the median of 5
repeats of a timed inner loop), so that ``benchmarks`` can interleave the frameworks.
"""
import json
import os
import statistics
import sys
import time

import numpy as np


def _time(fn, min_seconds):
    fn()
    fn()  # warm-up: graph tracing, allocator, caches
    n, t0 = 1, time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_seconds / once))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def _data(w, rng):
    kind, cell, n, t, d, m, k = w
    x = rng.standard_normal((n, t, d)).astype("float32")
    y = rng.standard_normal((n, k)).astype("float32")
    return x, y


def unrolled_fn(w, x, y):
    from unrolled import layers, optimizers
    from unrolled.models import Sequential
    kind, cell, n, t, d, m, k = w
    layer = getattr(layers, cell)(m)
    model = Sequential([layers.Input((t, d)), layer, layers.Dense(k)])
    if kind == "predict":
        return lambda: model.predict(x, verbose=0)
    if kind == "infer":
        return lambda: model.predict_on_batch(x)
    model.compile(optimizer=optimizers.Adam(1e-3), loss="mse")
    return lambda: model.train_on_batch(x, y)


def torch_fn(w, x, y):
    import torch
    kind, cell, n, t, d, m, k = w
    rnn = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[cell](d, m, batch_first=True)
    head = torch.nn.Linear(m, k)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def forward():
        out, _ = rnn(xt)
        return head(out[:, -1])

    if kind in ("predict", "infer"):
        def infer():
            with torch.inference_mode():
                return forward().numpy()
        return infer
    opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(forward(), yt)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def keras_fn(w, x, y):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf
    kind, cell, n, t, d, m, k = w
    model = keras.Sequential([keras.Input((t, d)), getattr(keras.layers, cell)(m), keras.layers.Dense(k)])
    if kind == "predict":
        return lambda: model.predict(x, verbose=0)
    if kind == "infer":
        f = tf.function(lambda a: model(a, training=False))
        xt = tf.constant(x)
        return lambda: f(xt).numpy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return lambda: model.train_on_batch(x, y)


def main():
    """Serve timing requests: one JSON workload per stdin line, one JSON number per line."""
    framework, min_seconds = sys.argv[1], float(sys.argv[2])
    make = {"unrolled": unrolled_fn, "torch": torch_fn, "keras": keras_fn}[framework]
    for line in sys.stdin:
        w = tuple(json.loads(line))
        x, y = _data(w, np.random.default_rng(0))
        print(json.dumps(_time(make(w, x, y), min_seconds)), flush=True)


if __name__ == "__main__":
    main()
