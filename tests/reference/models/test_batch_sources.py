"""Data that comes in batches (issue 20.9): a Python generator with ``steps_per_epoch``, a
finite generator, and a ``PyDataset`` subclass (with ``on_epoch_end``) for ``fit``,
``validation_data``, ``evaluate`` and ``predict``, written as Keras scripts write them and
run in both frameworks with Keras's initial weights: the same histories and outputs."""
import warnings

import keras
import numpy as np
import pytest

import unrolled

RNG = np.random.default_rng(11)
X = RNG.standard_normal((40, 6, 3)).astype("float32")
Y = RNG.standard_normal((40, 2)).astype("float32")
W = RNG.uniform(0.5, 1.5, 40).astype("float32")


def batches(n_batches, size=8, weights=False):
    """A generator that cycles over the data in order, n_batches batches in all (None:
    forever)."""
    i = 0
    while n_batches is None or i < n_batches:
        k = i % (len(X) // size)
        part = slice(k * size, (k + 1) * size)
        yield (X[part], Y[part], W[part]) if weights else (X[part], Y[part])
        i += 1


def dataset_class(m):
    class Windows(m.utils.PyDataset):
        def __init__(self, size, **kwargs):
            super().__init__(**kwargs)
            self.size, self.epochs_ended = size, 0

        def __len__(self):
            return len(X) // self.size

        def __getitem__(self, i):
            part = slice(i * self.size, (i + 1) * self.size)
            return X[part], Y[part]

        def on_epoch_end(self):
            self.epochs_ended += 1
    return Windows


def script(m, start=None):
    model = m.Sequential([m.Input((6, 3)), m.layers.GRU(5), m.layers.Dense(2)])
    model.compile(loss="mse", optimizer=m.optimizers.Adam(0.01), metrics=["mae"])
    if start is not None:
        model.set_weights(start)
    weights = model.get_weights()
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["generator"] = model.fit(batches(None, weights=True), steps_per_epoch=3, epochs=3,
                                     verbose=0).history
        ds = dataset_class(m)(10)
        out["dataset"] = model.fit(ds, epochs=2, shuffle=False, verbose=0,
                                   validation_data=dataset_class(m)(20)).history
        out["ended"] = ds.epochs_ended
        out["evaluate"] = model.evaluate(dataset_class(m)(8), verbose=0)
        out["predict"] = model.predict(batches(None), steps=2, verbose=0)
        out["predict x only"] = model.predict(((X[i:i + 4],) for i in range(0, 12, 4)),
                                              verbose=0)
        out["finite"] = model.fit(batches(7), epochs=3, verbose=0).history   # last: see below
        if m is unrolled:
            with pytest.warns(UserWarning, match="ran out of data"):
                model.fit(batches(0), epochs=1, verbose=0)
    return weights, out


def test_generators_and_datasets_train_as_in_keras():
    start, want = script(keras)
    _, got = script(unrolled, start)
    # A finite generator without steps_per_epoch: the first epoch uses it all. Keras 3.15
    # then trains epochs 2 and 3 on the two batches it kept when it peeked at the generator;
    # unrolled stops with Keras's "ran out of data" warning instead (see models/sources.py).
    assert len(got["finite"]["loss"]) == 1 and len(want["finite"]["loss"]) == 3
    np.testing.assert_allclose(got["finite"]["loss"][0], want["finite"]["loss"][0], rtol=2e-5)
    for key in ("generator", "dataset"):
        assert set(got[key]) == set(want[key]), key
        for name in want[key]:
            assert len(got[key][name]) == len(want[key][name]), (key, name)
            np.testing.assert_allclose(got[key][name], want[key][name], rtol=2e-5,
                                       err_msg=f"{key} {name}")
    assert got["ended"] == want["ended"] == 3          # once as fit starts, once an epoch
    np.testing.assert_allclose(got["evaluate"], want["evaluate"], rtol=2e-5)
    for key in ("predict", "predict x only"):
        assert got[key].shape == want[key].shape
        np.testing.assert_allclose(got[key], want[key], rtol=2e-5, atol=1e-6)


def test_what_a_batch_source_cannot_take_is_refused():
    model = unrolled.Sequential([unrolled.Input((6, 3)), unrolled.layers.Dense(2)])
    model.compile(loss="mse", optimizer="sgd")
    with pytest.raises(ValueError, match="`y` argument is not supported"):
        model.fit(batches(2), Y, verbose=0)
    with pytest.raises(ValueError, match="`validation_split` argument is not supported"):
        model.fit(batches(2), validation_split=0.2, verbose=0)
    with pytest.raises(NotImplementedError, match="class_weight"):
        model.fit(batches(2), class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="must be a tuple"):
        model.fit(iter([X[:4]]), verbose=0)


def test_array_likes_are_arrays_not_batch_sources():
    """A dask array or a DataFrame has __len__ and __getitem__ too; it is data, not batches."""
    import dask.array as da
    import pandas as pd
    from unrolled.models.sources import is_batch_source
    x = X[:8]
    model = unrolled.Sequential([unrolled.Input((6, 3)), unrolled.layers.GRU(2)])
    want = model.predict(x, verbose=0)
    assert not is_batch_source(da.from_array(x, chunks=4))
    np.testing.assert_allclose(model.predict(da.from_array(x, chunks=4), verbose=0), want,
                               rtol=1e-6, atol=1e-7)          # float32, whatever BLAS does
    flat = unrolled.Sequential([unrolled.Input((3,)), unrolled.layers.Dense(2)])
    frame = pd.DataFrame(x[:, 0, :])
    assert not is_batch_source(frame)
    np.testing.assert_allclose(flat.predict(frame, verbose=0),
                               flat.predict(x[:, 0, :], verbose=0), rtol=1e-6, atol=1e-7)
