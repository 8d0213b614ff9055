"""``layer.trainable = False`` freezes a layer as Keras does (issue 20, item 1).

Each test builds the same model in Keras 3 and in unrolled, copies Keras's weights over,
freezes the same layers the same way, trains both, and compares the weight lists, the
History and the final weights. Before the fix, a layer frozen inside a model still moved:
the model read only its own flag, not its layers'.
"""
import numpy as np
import pytest
from keras_ref import keras

from unrolled import layers as U
from unrolled.models import Model, load_model
from unrolled.optimizers import Adam


def _pair(seed=0, keras_too=True):
    """The same graph in both frameworks: LSTM -> Bidirectional(GRU) -> TimeDistributed(Dense)
    -> LSTM -> Dense, every layer named (inner ones too: auto names carry a per-process
    counter that differs between the two frameworks), so weight paths compare.
    ``keras_too=False``: ours alone (``None`` for Keras's), with the same weights."""
    def build(L, M):
        i = L.Input((6, 3), name="x")
        h = L.LSTM(4, return_sequences=True, name="enc")(i)
        h = L.Bidirectional(L.GRU(3, return_sequences=True, name="gru"), name="bi")(h)
        h = L.TimeDistributed(L.Dense(4, name="dense"), name="td")(h)
        h = L.LSTM(5, name="dec")(h)
        return M(i, L.Dense(2, name="head")(h))
    k = build(keras.layers, keras.Model) if keras_too else None
    u = build(U, Model)
    r = np.random.default_rng(seed)
    weights = [(r.standard_normal(w.shape) * 0.4).astype("float32")
               for w in (u if k is None else k).get_weights()]
    if k is not None:
        k.set_weights(weights)
    u.set_weights(weights)
    x = r.standard_normal((16, 6, 3)).astype("float32")
    y = r.standard_normal((16, 2)).astype("float32")
    return k, u, x, y


def _paths(ws):
    return [w.path for w in ws]


FREEZES = {
    "a layer": lambda m: setattr(m.get_layer("enc"), "trainable", False),
    "a wrapper": lambda m: setattr(m.get_layer("bi"), "trainable", False),
    "inside a wrapper": lambda m: setattr(m.get_layer("bi").forward_layer, "trainable", False),
    "time distributed": lambda m: setattr(m.get_layer("td"), "trainable", False),
    "model then one layer back": lambda m: (setattr(m, "trainable", False),
                                            setattr(m.get_layer("head"), "trainable", True)),
    "model off and on": lambda m: (setattr(m.get_layer("dec"), "trainable", False),
                                   setattr(m, "trainable", False), setattr(m, "trainable", True)),
}


@pytest.mark.parametrize("when", ["before compile", "after compile"])
@pytest.mark.parametrize("how", sorted(FREEZES))
def test_frozen_weights_stay_and_the_rest_trains_as_keras(how, when):
    k, u, x, y = _pair()
    for m in (k, u):
        if when == "before compile":
            FREEZES[how](m)
        m.compile(optimizer=(keras.optimizers.Adam if m is k else Adam)(learning_rate=0.01),
                  loss="mse")
        if when == "after compile":
            FREEZES[how](m)
    assert _paths(u.trainable_weights) == _paths(k.trainable_weights)
    assert _paths(u.non_trainable_weights) == _paths(k.non_trainable_weights)
    if how == "model off and on":        # Keras's setter reaches every layer: all unfrozen
        assert not u.non_trainable_weights and u.get_layer("dec").trainable
    else:
        assert u.non_trainable_weights, "the case must freeze something"
    before = {w.path: w.numpy() for w in u.non_trainable_weights}
    hk = k.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    hu = u.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(hu["loss"], hk["loss"], rtol=1e-5)
    for w in u.non_trainable_weights:
        np.testing.assert_array_equal(w.numpy(), before[w.path])
    for a, b in zip(u.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_constructor_flag_and_summary_counts_match_keras():
    def build(L, M):
        i = L.Input((5, 2))
        h = L.SimpleRNN(4, trainable=False, name="rnn")(i)
        return M(i, L.Dense(3, name="out")(h))
    k, u = build(keras.layers, keras.Model), build(U, Model)
    assert _paths(u.trainable_weights) == _paths(k.trainable_weights) == ["out/kernel", "out/bias"]
    lines = []
    u.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Trainable params: 15 (60.00 B)" in text
    assert "Non-trainable params: 28 (112.00 B)" in text


@pytest.mark.parametrize("suffix", [".keras", ".h5", ".unrolled.npz"])
def test_the_flag_is_saved_and_loaded(tmp_path, suffix):
    _, u, x, _ = _pair(keras_too=False)
    u.get_layer("enc").trainable = False
    u.get_layer("bi").trainable = False
    path = tmp_path / f"m{suffix}"
    u.save(path)
    back = load_model(path)
    assert _paths(back.trainable_weights) == _paths(u.trainable_weights)
    assert back.get_layer("enc").trainable is False
    np.testing.assert_allclose(back.predict(x, verbose=0), u.predict(x, verbose=0), rtol=1e-6)


def test_keras_reads_our_flag_from_a_keras_file(tmp_path):
    _, u, _, _ = _pair(keras_too=False)
    u.get_layer("dec").trainable = False
    u.save(tmp_path / "m.keras")
    k = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    assert _paths(k.trainable_weights) == _paths(u.trainable_weights)
