"""``model.load_weights`` and ``to_json``/``model_from_json`` as Keras scripts use them
(issue 21.10): a weights file written by Keras 2 (``tf_keras``) or Keras 3 loaded into a
model built in code, whose layer names are not the file's; ``by_name`` and
``skip_mismatch``; the JSON text of each Keras version. Checked against ``tf_keras`` and
Keras 3 doing the same."""
import warnings

import numpy as np
import pytest
import tf_keras  # the Keras 2 reference (make installs it)
from conftest import varied
from keras_ref import keras

import unrolled
from unrolled.models import model_from_json

T, F = 5, 3


def _stack(m, hard_sigmoid=False, dense_units=2, names=None):
    """Input -> LSTM(4) -> Dense(dense_units), in Keras 2, Keras 3 or unrolled (``m``)."""
    names = names or {}
    act = {"recurrent_activation": "hard_sigmoid"} if hard_sigmoid else {}
    return m.Sequential([m.Input((T, F)) if m is not tf_keras else
                         tf_keras.layers.InputLayer(input_shape=(T, F)),
                         m.layers.LSTM(4, name=names.get("lstm"), **act),
                         m.layers.Dense(dense_units, name=names.get("dense"))])


def _two_branches(m):
    """Two inputs through LSTM and GRU of equal output shapes, concatenated: a model where a
    wrong order would put arrays of the right shapes on the wrong layers."""
    a, b = m.Input((T, F)), m.Input((T, F))
    h = m.layers.concatenate([m.layers.GRU(4)(a), m.layers.GRU(4)(b)])
    return m.Model([a, b], m.layers.Dense(2)(h))


def _vary(model, rng):
    model.set_weights([varied(rng, *w.shape) for w in model.get_weights()])


def _x(rng, n=1):
    xs = [rng.standard_normal((6, T, F)).astype("float32") for _ in range(n)]
    return xs if n > 1 else xs[0]


def test_keras2_weights_load_by_layer_order_into_a_model_built_in_code(tmp_path, rng):
    theirs = _stack(tf_keras)
    _vary(theirs, rng)
    theirs.save_weights(tmp_path / "w.h5")              # Keras 2's weights-only .h5
    ours = _stack(unrolled, names={"lstm": "encoder", "dense": "head"})
    ours.load_weights(tmp_path / "w.h5")                # names differ: matched by order
    x = _x(rng)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_keras2_weights_of_a_two_branch_model_load_in_keras_order(tmp_path, rng):
    theirs = _two_branches(tf_keras)
    _vary(theirs, rng)
    theirs.save_weights(tmp_path / "w.h5")
    ours = _two_branches(unrolled)
    ours.load_weights(tmp_path / "w.h5")
    k3 = _two_branches(keras)
    k3.load_weights(tmp_path / "w.h5")                  # Keras 3 reads it the same way
    for a, b in zip(ours.get_weights(), k3.get_weights()):
        np.testing.assert_array_equal(a, b)
    xs = _x(rng, 2)
    np.testing.assert_allclose(ours.predict(xs, verbose=0), theirs.predict(xs, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_by_name_loads_the_layers_the_file_names_and_leaves_the_others(tmp_path, rng):
    theirs = _stack(tf_keras, names={"lstm": "lstm_old", "dense": "head"})
    _vary(theirs, rng)
    theirs.save_weights(tmp_path / "w.h5")
    names = {"lstm": "lstm_new", "dense": "head"}
    ours, k3 = _stack(unrolled, names=names), _stack(keras, names=names)
    _vary(ours, rng)
    k3.set_weights(ours.get_weights())
    ours.load_weights(tmp_path / "w.h5", by_name=True)
    k3.load_weights(tmp_path / "w.h5", by_name=True)
    for a, b in zip(ours.get_weights(), k3.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.layers[1].get_weights()[0], theirs.layers[1].get_weights()[0])
    assert not np.array_equal(ours.layers[0].get_weights()[0], theirs.layers[0].get_weights()[0])


@pytest.mark.parametrize("by_name", [None, True])
def test_skip_mismatch_leaves_the_weights_that_do_not_fit(tmp_path, rng, by_name):
    theirs = _stack(tf_keras, names={"lstm": "lstm", "dense": "dense"})
    _vary(theirs, rng)
    theirs.save_weights(tmp_path / "w.h5")
    ours, k3 = (_stack(m, dense_units=3, names={"lstm": "lstm", "dense": "dense"})
                for m in (unrolled, keras))
    _vary(ours, rng)
    k3.set_weights(ours.get_weights())
    kw = {} if by_name is None else {"by_name": True}
    with pytest.raises(ValueError, match="shape"):
        ours.load_weights(tmp_path / "w.h5", **kw)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ours.load_weights(tmp_path / "w.h5", skip_mismatch=True, **kw)
    assert any("Skipping" in str(w.message) for w in seen)
    k3.load_weights(tmp_path / "w.h5", skip_mismatch=True, **kw)
    for a, b in zip(ours.get_weights(), k3.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours.get_weights()[0], theirs.get_weights()[0])   # LSTM loaded


def test_a_model_with_another_number_of_layers_is_refused_and_nothing_is_assigned(tmp_path, rng):
    theirs = _stack(tf_keras)
    _vary(theirs, rng)
    theirs.save_weights(tmp_path / "w.h5")
    ours = unrolled.Sequential([unrolled.Input((T, F)), unrolled.layers.LSTM(4)])
    before = ours.get_weights()
    with pytest.raises(ValueError, match="by_name=True"):
        ours.load_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match="count mismatch"):          # as Keras 3 refuses it
        keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(4)]).load_weights(
            tmp_path / "w.h5")
    for a, b in zip(ours.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_keras3_weights_and_keras_archives_load_into_a_model_built_in_code(tmp_path, rng):
    theirs = _stack(keras)
    _vary(theirs, rng)
    theirs.save_weights(tmp_path / "w.weights.h5")
    theirs.save(tmp_path / "m.keras")
    x = _x(rng)
    for name in ("w.weights.h5", "m.keras"):
        ours = _stack(unrolled, names={"lstm": "encoder", "dense": "head"})
        ours.load_weights(tmp_path / name)
        np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)
    ours, k3 = _stack(unrolled, dense_units=3), _stack(keras, dense_units=3)
    _vary(ours, rng)
    k3.set_weights(ours.get_weights())
    with pytest.raises(ValueError):
        ours.load_weights(tmp_path / "w.weights.h5")
    with pytest.warns(UserWarning, match="Skipping"):
        ours.load_weights(tmp_path / "w.weights.h5", skip_mismatch=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k3.load_weights(tmp_path / "w.weights.h5", skip_mismatch=True)
    for a, b in zip(ours.get_weights(), k3.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_load_weights_arguments_are_keras_3s(tmp_path, rng):
    ours = _stack(unrolled)
    ours.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="Invalid keyword arguments"):
        ours.load_weights(tmp_path / "w.weights.h5", reshape=True)
    with pytest.raises(ValueError, match="by_name"):
        ours.load_weights(tmp_path / "w.weights.h5", by_name=True)
    with pytest.raises(NotImplementedError, match="objects_to_skip"):
        ours.load_weights(tmp_path / "w.weights.h5", objects_to_skip=[ours.layers[0]])


@pytest.mark.parametrize("writer", ["tf_keras", "keras"])
@pytest.mark.parametrize("hard_sigmoid", [False, True])
def test_model_from_json_of_each_keras_version(rng, writer, hard_sigmoid):
    """A Keras 2 text means Keras 2's hard_sigmoid, clip(0.2 x + 0.5, 0, 1); Keras 3's its
    own, clip(x / 6 + 0.5, 0, 1): the predictions say which one was taken."""
    m = {"tf_keras": tf_keras, "keras": keras}[writer]
    theirs = _stack(m, hard_sigmoid)
    _vary(theirs, rng)
    ours = model_from_json(theirs.to_json())
    ours.set_weights(theirs.get_weights())
    x = _x(rng)
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_to_json_is_read_by_keras_and_by_unrolled(rng):
    ours = _two_branches(unrolled)
    _vary(ours, rng)
    text = ours.to_json()
    for model in (keras.models.model_from_json(text), model_from_json(text)):
        model.set_weights(ours.get_weights())
        xs = _x(rng, 2)
        np.testing.assert_allclose(np.asarray(model.predict(xs, verbose=0)),
                                   ours.predict(xs, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="custom_objects"):
        model_from_json(text, custom_objects={"Mine": object})
    with pytest.raises(ValueError, match="class_name"):
        model_from_json("[1, 2]")
    assert unrolled.models.model_from_json is model_from_json


def test_npz_weights_go_by_position_only_between_models_of_the_same_structure(tmp_path, rng):
    """issue 26.10: a .weights.npz index names each weight. A model built again (other
    layer names) takes the arrays by position; a model of another structure whose shapes
    happen to fit (two Dense kernels where an RNN has kernel and recurrent_kernel) is
    refused, where it used to load silently; an index that is not a list of paths too."""
    import json
    import zipfile
    L = unrolled.layers
    rnn = unrolled.Sequential([unrolled.Input((5, 4)), L.SimpleRNN(4, use_bias=False)])
    _vary(rnn, rng)
    rnn.save_weights(tmp_path / "rnn.weights.npz")
    again = unrolled.Sequential([unrolled.Input((5, 4)), L.SimpleRNN(4, use_bias=False,
                                                                    name="renamed")])
    again.load_weights(tmp_path / "rnn.weights.npz")
    for a, b in zip(again.get_weights(), rnn.get_weights()):
        np.testing.assert_array_equal(a, b)
    dense = unrolled.Sequential([unrolled.Input((5, 4)), L.Dense(4, use_bias=False),
                                 L.Dense(4, use_bias=False)])
    before = dense.get_weights()
    with pytest.raises(ValueError, match="another structure"):
        dense.load_weights(tmp_path / "rnn.weights.npz")
    for a, b in zip(dense.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with zipfile.ZipFile(tmp_path / "rnn.weights.npz") as z:
        members = {n: z.read(n) for n in z.namelist()}
    index = np.frombuffer(json.dumps([1, 2]).encode(), np.uint8)
    import io as _io
    buf = _io.BytesIO()
    np.save(buf, index)
    members["__order__.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "bad.weights.npz", "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="not a list of weight paths"):
        again.load_weights(tmp_path / "bad.weights.npz")
