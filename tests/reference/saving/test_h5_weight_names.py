"""A legacy .h5 that unrolled writes names every weight as Keras 3 does (its path:
``bidirectional/forward_lstm/lstm_cell/kernel``, ``mha/query/kernel``), so that tools
reading weights by name find them; and stacked cells' weights have one path each."""
import h5py
import keras
import numpy as np

import unrolled


def _model(m):
    L = m.layers
    i = m.Input((5, 4))
    # every layer named: automatic names count per process, and the suite builds many
    h = L.Bidirectional(L.LSTM(3, return_sequences=True, name="lstm"), name="bi")(i)
    cells = L.StackedRNNCells([L.LSTMCell(4, name="lstm_cell"), L.GRUCell(3, name="gru_cell")],
                              name="stacked_rnn_cells")
    h = L.RNN(cells, return_sequences=True, name="rnn")(h)
    h = L.TimeDistributed(L.Dense(4, name="dense"), name="td")(h)
    h = L.BatchNormalization(name="bn")(h)
    return m.Model(i, L.MultiHeadAttention(2, 3, name="mha")(h, h))


def _names(path):
    with h5py.File(path) as f:
        group = f["model_weights"]
        return [[n.decode() if isinstance(n, bytes) else n
                 for n in group[layer].attrs["weight_names"]]
                for layer in group.attrs["layer_names"]]


def test_legacy_h5_weight_names_are_keras_names(tmp_path, rng):
    theirs = _model(keras)
    theirs.save(tmp_path / "theirs.h5")
    ours = _model(unrolled)
    ours.set_weights(theirs.get_weights())
    ours.save(tmp_path / "ours.h5")
    assert _names(tmp_path / "ours.h5") == _names(tmp_path / "theirs.h5")
    paths = [w.path for w in ours.weights]
    assert len(set(paths)) == len(paths)
    assert "rnn/stacked_rnn_cells/gru_cell/bias" in paths
    x = rng.standard_normal((2, 5, 4)).astype("float32")
    back = keras.models.load_model(tmp_path / "ours.h5")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
