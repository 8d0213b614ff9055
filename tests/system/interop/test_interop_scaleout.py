"""Scale-out: a model pickles as plain NumPy state and scores in dask worker processes."""
import pickle

import numpy as np
import pytest

from unrolled.interop.dask_scoring import score_with_dask
from unrolled.layers import GRU, LSTM, Bidirectional, Dense, Embedding, Input
from unrolled.models import Sequential


def make_model():
    model = Sequential([Input((8, 3)), Bidirectional(LSTM(6, return_sequences=True)), GRU(4),
                        Dense(2, activation="softmax")])
    rng = np.random.default_rng(0)
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype("float32")
                       for w in model.get_weights()])
    return model


def test_pickle_round_trip_gives_same_predictions():
    model = make_model()
    model.compile(loss="mse", optimizer="adam")
    x = np.random.default_rng(1).standard_normal((16, 8, 3)).astype("float32")
    model.fit(x, np.full((16, 2), 0.5, "float32"), epochs=1, verbose=0)
    data = pickle.dumps(model)
    again = pickle.loads(data)
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    assert b"lambda" not in data                               # activations travel by name


def test_dask_local_cluster_of_two_processes():
    from dask.distributed import Client, LocalCluster

    model = make_model()
    x = np.random.default_rng(2).standard_normal((20_000, 8, 3)).astype("float32")
    expected = model.predict(x, batch_size=1024, verbose=0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        y = score_with_dask(model, x, chunks=2_500, batch_size=512)
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    assert y.shape == expected.shape
    assert np.abs(y - expected).max() < 1e-6


def test_dask_sequence_output_and_token_ids():
    model = Sequential([Input((5,), dtype="int64"), Embedding(7, 3),
                        LSTM(2, return_sequences=True)])
    ids = np.random.default_rng(3).integers(0, 7, size=(1000, 5))
    y = score_with_dask(model, ids, chunks=300)                # the default (threaded) scheduler
    np.testing.assert_allclose(y, model.predict(ids, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="one input"):
        from unrolled.models import Model
        i, j = Input((2,)), Input((2,))
        score_with_dask(Model([i, j], Dense(1)(i)), ids, chunks=10)
