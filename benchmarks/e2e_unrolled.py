"""One end-to-end run in unrolled: ``python -m benchmarks.e2e_unrolled EXAMPLE EPOCHS [quick]``.

Trains the model of ``unrolled.examples.EXAMPLE`` as the example does (its data helpers,
layers, optimizer, batch size 32, validation data where it has them), for exactly EPOCHS
epochs (no early stopping: every framework runs the same number), then predicts its test
windows once. Prints one JSON line: the time of each phase, the final training losses,
the BLAS thread settings, and sums of the data (``e2e_data.summary``) that the harness
compares between frameworks. ``EXAMPLE`` may be a comma-separated list (the smoke run).
"""
import time

START = time.perf_counter()
import os  # noqa: E402

import numpy as np  # noqa: E402
from unrolled.data import (Scaler, Vocabulary, load_co2, load_inferno,  # noqa: E402
                           split_in_time, timeseries_windows)
from unrolled.layers import LSTM, Dense, Embedding, Input, SimpleRNN  # noqa: E402
from unrolled.losses import SparseCategoricalCrossentropy  # noqa: E402
from unrolled.models import Model  # noqa: E402
from unrolled.optimizers import Adam  # noqa: E402
from unrolled.utils import set_random_seed  # noqa: E402

from . import e2e_data  # noqa: E402

IMPORTED = time.perf_counter()


def sine(epochs, quick, clock):
    t = np.arange(200 if quick else 1000)
    series = np.sin(0.1 * t) + 0.1 * np.random.default_rng(0).standard_normal(len(t))
    train, _, test = split_in_time(series, train=0.5, validation=0, context=20)
    x, y = timeseries_windows(train, sequence_length=20, horizon=1)
    xt, _ = timeseries_windows(test, sequence_length=20, horizon=1)
    x, xt = x[..., None], xt[..., None]
    clock("data")
    losses = {}
    for name, layer in (("SimpleRNN", SimpleRNN), ("LSTM", LSTM)):
        set_random_seed(0)
        i = Input(shape=(20, 1))
        model = Model(i, Dense(1)(layer(32)(i)))
        model.compile(optimizer=Adam(learning_rate=0.005), loss="mse")
        clock("build")
        losses[name] = model.fit(x, y, epochs=epochs, batch_size=32,
                                 verbose=0).history["loss"][-1]
        clock("fit")
        model.predict(xt, verbose=0)
        clock("predict")
    return losses, (x, y, xt)


def co2(epochs, quick, clock):
    _, ppm = load_co2()
    train, val, test = split_in_time(np.diff(ppm), train=0.7, validation=0.15, context=24)
    scaler = Scaler("standard").fit(train)
    parts = [timeseries_windows(scaler.transform(p), sequence_length=24, horizon=1)
             for p in (train, val, test)]
    if quick:
        parts = [(a[:64], b[:64]) for a, b in parts]
    (x, y), (xv, yv), (xt, _) = [(a[..., None], b) for a, b in parts]
    clock("data")
    set_random_seed(0)
    i = Input(shape=(24, 1))
    model = Model(i, Dense(1)(LSTM(32)(i)))
    model.compile(optimizer=Adam(learning_rate=0.005), loss="mse")
    clock("build")
    loss = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
                     verbose=0).history["loss"][-1]
    clock("fit")
    model.predict(xt, verbose=0)
    clock("predict")
    return {"LSTM": loss}, (x, y, xv, yv, xt)


def dante(epochs, quick, clock):
    text = load_inferno()
    vocab = Vocabulary(text)
    train, val, test = split_in_time(vocab.encode(text), train=0.8, validation=0.1)
    length = 100
    if quick:
        train, length = train[:1000], 20

    def shifted(ids):
        return (timeseries_windows(ids[:-1], sequence_length=length, sequence_stride=length // 2),
                timeseries_windows(ids[1:], sequence_length=length, sequence_stride=length // 2))
    (x, y), (xv, yv), (xt, _) = shifted(train), shifted(val), shifted(test)
    clock("data")
    set_random_seed(0)
    i = Input(batch_shape=(None, None), dtype="int32")
    h = LSTM(128, return_sequences=True)(Embedding(vocab.size, 32)(i))
    model = Model(i, Dense(vocab.size)(h))
    model.compile(optimizer=Adam(learning_rate=0.005, clipnorm=5.0),
                  loss=SparseCategoricalCrossentropy(from_logits=True))
    clock("build")
    loss = model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32,
                     verbose=0).history["loss"][-1]
    clock("fit")
    model.predict(xt, verbose=0)
    clock("predict")
    return {"LSTM": loss}, (x, y, xv, yv, xt)


def threads():
    """unrolled's thread policy and what it chose (its per-step timing, ``fast/threads``)."""
    from threadpoolctl import threadpool_info

    from unrolled.fast import threads as policy
    blas = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    user = [v for v in policy._USER_VARIABLES if os.environ.get(v)]
    chosen = sorted({c.best or c.last for c in policy._choices.values() if c is not None
                     and (c.best or c.last)})
    mode = f"set by {','.join(user)}" if user else (
        "off" if not policy._controllers else f"timed per step, chose {chosen or 'none'}")
    return f"BLAS {max(blas, default='?')} threads, unrolled policy {mode}"


def compiled():
    """How many kernels this process compiled (numba's cache misses): 0 once the machine
    has them cached (``unrolled.fast``), which the timed runs should find."""
    from unrolled.fast import kernels
    table = getattr(kernels, "_kernels", None) or {}
    return sum(sum(k.stats.cache_misses.values()) for k in table.values())


if __name__ == "__main__":
    e2e_data.main({"sine": sine, "co2": co2, "dante": dante}, threads, START, IMPORTED,
                  extra=lambda: {"compiled": compiled()})
