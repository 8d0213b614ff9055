"""The three shipped examples' training data in plain NumPy, for the PyTorch and Keras runs
of ``benchmarks.endtoend`` (which must not import unrolled: its import is not theirs to pay).

Each function returns what ``unrolled.examples.<name>`` feeds ``fit``, built as a user of
those frameworks would build it from the same files (``src/unrolled/data/files``): the same
windows, splits and scaling, float32 for the series. ``endtoend`` checks that every
framework's run reports the same sums of these arrays (``summary``).
"""
from pathlib import Path

import numpy as np

FILES = Path(__file__).resolve().parents[1] / "src" / "unrolled" / "data" / "files"


def windows(series, length, stride=1):
    """``series[p : p + length]`` for the window starts ``p = 0, stride, ...`` that fit."""
    starts = np.arange(0, len(series) - length + 1, stride)
    return series[starts[:, None] + np.arange(length)]


def forecast(series, length):
    """Windows of ``length`` values, each with the value after it: ``(x, y)``, y (n, 1)."""
    x = windows(series[:-1], length)
    return x, series[length:length + len(x), None]


def sine(n=1000, seed=0, steps=20, quick=False):
    """``sin(0.1 t) + 0.1 * noise``; train on the first half (``examples/sine.py``)."""
    if quick:
        n = 200
    t = np.arange(n)
    series = np.sin(0.1 * t) + 0.1 * np.random.default_rng(seed).standard_normal(n)
    x, y = forecast(series[: n // 2], steps)
    xt, _ = forecast(series[n // 2 - steps:], steps)
    f32 = np.float32
    return x[..., None].astype(f32), y.astype(f32), xt[..., None].astype(f32)


def co2(steps=24, quick=False):
    """Monthly changes of Mauna Loa CO2, standardized on the training part, in windows of
    24 (``examples/co2.py``): train 70 %, validation 15 %, test the rest, with context."""
    rows = [line.split(",") for line in (FILES / "co2_mauna_loa_monthly.csv").read_text(
        encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")]
    d = np.diff(np.array([float(r[1]) for r in rows[1:]]))      # rows[0]: the header
    n_train, n_val = round(0.7 * len(d)), round(0.15 * len(d))
    train, val = d[:n_train], d[n_train - steps:n_train + n_val]
    test = d[n_train + n_val - steps:]
    mean, std = train.mean(), train.std()
    parts = [forecast((p - mean) / std, steps) for p in (train, val, test)]
    if quick:
        parts = [(x[:64], y[:64]) for x, y in parts]
    f32 = np.float32
    (x, y), (xv, yv), (xt, _) = parts
    return (x[..., None].astype(f32), y.astype(f32), xv[..., None].astype(f32),
            yv.astype(f32), xt[..., None].astype(f32))


def dante(length=100, quick=False):
    """Character ids of the Inferno (each line stripped), a sorted vocabulary, 80/10/10
    split in time, windows of 100 every 50 and the same one character later
    (``examples/dante.py``). Returns ``(x, y, xv, yv, xt, vocabulary size)``."""
    text = (FILES / "inferno_1-3.txt").read_text(encoding="utf-8")
    text = "\n".join(line.strip() for line in text.split("\n"))
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index[c] for c in text], dtype=np.int64)
    n_train, n_val = round(0.8 * len(ids)), round(0.1 * len(ids))
    train, val, test = ids[:n_train], ids[n_train:n_train + n_val], ids[n_train + n_val:]
    if quick:
        train, length = train[:1000], 20

    def shifted(part):
        return windows(part[:-1], length, length // 2), windows(part[1:], length, length // 2)
    (x, y), (xv, yv), (xt, _) = shifted(train), shifted(val), shifted(test)
    return x, y, xv, yv, xt, len(chars)


def summary(*arrays):
    """What the runs compare: each array's shape and the sum of its float32 values."""
    return [[list(np.shape(a)), float(np.asarray(a, np.float32).sum(dtype=np.float64))]
            for a in arrays]


def main(examples, threads, start, imported, extra=dict):
    """The scripts' command line, ``EXAMPLES EPOCHS [quick]``: run each example named
    (comma-separated) with ``examples[name](epochs, quick, clock)``, which calls
    ``clock(phase)`` at the end of each phase (data, build, fit, predict) and returns
    ``(final losses, arrays)``; print one JSON line: the import time (``imported - start``),
    each example's phases, losses and data ``summary``, ``threads()``, ``extra()``, and the
    seconds spent on this report after the last ``predict`` ("bookkeeping")."""
    import json
    import sys
    import time
    names, epochs = sys.argv[1].split(","), int(sys.argv[2])
    quick = len(sys.argv) > 3 and sys.argv[3] == "quick"
    results, last = {}, [imported]
    for name in names:
        phases = {}

        def clock(phase):
            now = time.perf_counter()
            phases[phase] = phases.get(phase, 0.0) + now - last[0]
            last[0] = now
        losses, arrays = examples[name](epochs, quick, clock)
        results[name] = {"phases": phases, "losses": {k: float(v) for k, v in losses.items()},
                         "arrays": arrays}
    report = time.perf_counter()
    for name in names:
        results[name]["data"] = summary(*results[name].pop("arrays"))
    print(json.dumps({"import": imported - start, "results": results, "threads": threads(),
                      **extra(), "bookkeeping": time.perf_counter() - report}))
