"""Cold starts: a fresh process that imports the framework, builds a model and predicts
once, timed from the outside (wall time of the whole process), as a user's script runs.

``python -m benchmarks.cold`` prints the table; ``make bench`` adds it to its run. Each
framework runs the same model on the same input, each in its own ``python -c`` process,
the frameworks taking turns, ``ROUNDS`` times; the best time is kept (the first round
also fills the operating system's file cache and numba's cache, as any earlier run on
the machine would have). Target (the fast-path issue): unrolled at most 0.5x PyTorch.
"""
import os
import subprocess
import sys
import time

ROUNDS = 3

# The models: the seed notebook's, and a small text model (Embedding -> LSTM(64) -> Dense).
MODELS = {
    "notebook: SimpleRNN(5) (1,10,3)": {
        "unrolled": """
import numpy as np
from unrolled.layers import Dense, Input, SimpleRNN
from unrolled.models import Sequential
m = Sequential([Input((10, 3)), SimpleRNN(5), Dense(2)])
m.compile(optimizer="adam", loss="mse")
m.predict(np.ones((1, 10, 3), "float32"), verbose=0)
""",
        "torch": """
import torch
rnn, head = torch.nn.RNN(3, 5, batch_first=True), torch.nn.Linear(5, 2)
with torch.inference_mode():
    head(rnn(torch.ones(1, 10, 3))[0][:, -1])
""",
        "keras": """
import numpy as np, keras
m = keras.Sequential([keras.Input((10, 3)), keras.layers.SimpleRNN(5), keras.layers.Dense(2)])
m.compile(optimizer="adam", loss="mse")
m.predict(np.ones((1, 10, 3), "float32"), verbose=0)
""",
    },
    "text: Embedding(1000,32) LSTM(64) (32,100)": {
        "unrolled": """
import numpy as np
from unrolled.layers import LSTM, Dense, Embedding, Input
from unrolled.models import Sequential
m = Sequential([Input((100,), dtype="int32"), Embedding(1000, 32), LSTM(64), Dense(1)])
m.predict(np.arange(3200).reshape(32, 100) % 1000, verbose=0)
""",
        "torch": """
import torch
emb, lstm, head = torch.nn.Embedding(1000, 32), torch.nn.LSTM(32, 64, batch_first=True), torch.nn.Linear(64, 1)
with torch.inference_mode():
    head(lstm(emb(torch.arange(3200).reshape(32, 100) % 1000))[0][:, -1])
""",
        "keras": """
import numpy as np, keras
m = keras.Sequential([keras.Input((100,), dtype="int32"), keras.layers.Embedding(1000, 32),
                      keras.layers.LSTM(64), keras.layers.Dense(1)])
m.predict(np.arange(3200).reshape(32, 100) % 1000, verbose=0)
""",
    },
}

_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}


def time_process(code):
    """Wall seconds of ``python -c code``, start to exit."""
    env = {**os.environ, **_ENV}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def run(frameworks=("unrolled", "torch", "keras"), rounds=ROUNDS, models=tuple(MODELS)):
    """``{model: {framework: [seconds per round]}}``, the frameworks taking turns."""
    times = {model: {fw: [] for fw in frameworks} for model in models}
    for r in range(rounds):
        for model in models:
            codes = MODELS[model]
            for fw in frameworks:
                print(f"cold start, round {r + 1}/{rounds}: {model}, {fw}", file=sys.stderr,
                      flush=True)
                times[model][fw].append(time_process(codes[fw]))
    return times


def table(times):
    lines = ["| cold start (import, build, first predict) | unrolled | PyTorch | Keras | "
             "unrolled / PyTorch | unrolled / fastest other |", "|---|---:|---:|---:|---:|---:|"]
    for model, per in times.items():
        best = {fw: min(t) for fw, t in per.items()}
        others = [best[f] for f in ("torch", "keras") if f in best]
        cells = [f"{best[f]:.2f} s" if f in best else "-" for f in ("unrolled", "torch", "keras")]
        vs_torch = f"{best['unrolled'] / best['torch']:.2f}" if "torch" in best else "-"
        vs_best = f"{best['unrolled'] / min(others):.2f}" if others else "-"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {vs_torch} | {vs_best} |")
    return lines


if __name__ == "__main__":
    print("\n".join(table(run())))
