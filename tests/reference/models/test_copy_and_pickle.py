"""``copy.deepcopy`` and ``pickle`` of a compiled, trained model (issue 24.13): the copy's
``fit`` goes on where the original's would, as a Keras 3 copy does (Keras pickles and
deep-copies through an in-memory ``.keras`` archive; unrolled through its own format, whose
payload is data: ``models/pickling.py``)."""
import copy
import pickle
import pickletools
import warnings

import numpy as np
import pytest
from keras_ref import keras

import unrolled
from unrolled.io.safety import ModelFileError
from unrolled.models import load_model
from unrolled.models.pickling import rebuild


def _sequential(m):
    model = m.Sequential([m.Input((6, 3)), m.layers.LSTM(4, name="lstm"),
                          m.layers.Dense(2, name="dense")], name="seq")
    model.compile(optimizer=m.optimizers.Adam(m.optimizers.schedules.ExponentialDecay(
        0.02, 3, 0.5)), loss="mse", metrics=["mae", m.metrics.RootMeanSquaredError()])
    return model


def _functional(m):
    inp = m.Input((6, 3), name="x")
    h = m.layers.GRU(5, return_sequences=True, name="gru")(inp)
    a = m.layers.SimpleRNN(3, name="rnn")(h)
    b = m.layers.Dense(3, name="side")(m.layers.Flatten(name="flat")(inp))
    out = m.layers.Dense(2, name="out")(m.layers.Concatenate(name="cat")([a, b]))
    model = m.Model(inp, out, name="fun")
    model.compile(optimizer=m.optimizers.SGD(0.05, momentum=0.9), loss="mse", metrics=["mae"])
    return model


def _stateful(m):
    model = m.Sequential([m.Input((6, 3), batch_size=8),
                          m.layers.Bidirectional(m.layers.LSTM(4, stateful=True, name="lstm"),
                                                 name="bi"),
                          m.layers.Dense(2, name="dense")], name="bistate")
    model.compile(optimizer=m.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


CASES = {"sequential-adam-schedule": _sequential, "functional-sgd-momentum": _functional,
         "bidirectional-stateful-adam": _stateful}
FIT = dict(epochs=2, batch_size=8, shuffle=False, verbose=0)


def _data(seed=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((16, 6, 3)).astype("float32"),
            rng.standard_normal((16, 2)).astype("float32"))


def _states(model):
    bi = model.layers[0]
    return [np.asarray(s) for s in list(bi.forward_layer.states) + list(bi.backward_layer.states)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """For each case, Keras: fit 2 epochs and save; the original and its pickled copy
    then fit 2 epochs each."""
    x, y = _data()
    folder = tmp_path_factory.mktemp("copies")
    out = {}
    for name, build in CASES.items():
        theirs = build(keras)
        theirs.fit(x, y, **FIT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs.save(folder / f"{name}.keras")
        twin = pickle.loads(pickle.dumps(theirs))
        ref = {"file": folder / f"{name}.keras",
               "iterations": int(twin.optimizer.iterations.numpy())}
        if name.startswith("bidirectional"):
            ref["states_before"], ref["copy_states"] = _states(theirs), _states(twin)
        ref["copy"] = twin.fit(x, y, **FIT).history
        ref["copy_weights"] = twin.get_weights()
        ref["original"] = theirs.fit(x, y, **FIT).history
        out[name] = ref
    return out


def _same_continuation(a, b, x, y):
    """``a`` and ``b`` each fit 2 epochs: identical histories and weights (same process,
    same inputs, same code path). Returns the copy's history."""
    ha, hb = a.fit(x, y, **FIT).history, b.fit(x, y, **FIT).history
    assert ha == hb
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    return hb


COPIES = {"deepcopy": copy.deepcopy, "pickle": lambda m: pickle.loads(pickle.dumps(m))}


@pytest.mark.parametrize("how", sorted(COPIES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_copy_goes_on_as_the_original_and_as_keras_copy(case, how, reference):
    ref = reference[case]
    x, y = _data()
    ours = load_model(ref["file"])                       # Keras's model after 2 epochs
    twin = COPIES[how](ours)
    assert type(twin) is type(ours) and twin is not ours
    assert twin.optimizer.iterations == ours.optimizer.iterations == ref["iterations"] == 4
    assert type(twin.optimizer) is type(ours.optimizer)
    assert [v.path for v in twin.optimizer.variables] == [v.path for v in ours.optimizer.variables]
    for a, b in zip(twin.optimizer.variables, ours.optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())   # moments, momentum, lr
        assert a is not b
    for a, b in zip(twin.weights, ours.weights, strict=True):
        assert a is not b and a.path == b.path
    got = _same_continuation(ours, twin, x, y)
    want = ref["copy"]
    if not case.startswith("bidirectional"):             # Keras's copy goes on as its original
        for key in want:
            np.testing.assert_allclose(want[key], ref["original"][key], rtol=1e-6)
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)
    for a, b in zip(twin.get_weights(), ref["copy_weights"], strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("how", sorted(COPIES))
def test_stateful_states_are_not_copied_as_in_keras(how, reference):
    """Keras's copy (a ``.keras`` round trip) starts its stateful RNNs from zeros; so does
    unrolled's. With the original's states reset, both go on identically."""
    ref = reference["bidirectional-stateful-adam"]
    assert any(np.any(s != 0) for s in ref["states_before"])
    assert all(np.all(s == 0) for s in ref["copy_states"])
    x, y = _data()
    ours = _stateful(unrolled)
    ours.fit(x, y, **FIT)
    assert any(np.any(s != 0) for s in _states(ours))
    twin = COPIES[how](ours)
    states = _states(twin)
    assert len(states) == 4 and all(s.shape == (8, 4) and np.all(s == 0) for s in states)
    ours.layers[0].reset_states()
    _same_continuation(ours, twin, x, y)


def cubed_error(y_true, y_pred):                         # module level: pickled by name
    return np.mean(np.abs(y_pred - y_true) ** 3, axis=-1)


def cubed_error_gradient(y_true, y_pred):
    d = y_pred - y_true
    return 3 * d * np.abs(d) / d.shape[-1]


def peak(y_true, y_pred):
    return np.max(np.abs(y_pred - y_true), axis=-1)


def _with_functions(loss, metric, optimizer):
    model = unrolled.Sequential([unrolled.Input((6, 3)), unrolled.layers.GRU(3, name="gru"),
                                 unrolled.layers.Dense(2, name="dense")])
    model.compile(optimizer=optimizer, loss=loss, metrics=[metric, "mae"])
    return model


def test_function_loss_and_metric_pickle_by_reference():
    """A loss written as functions (``LossFunctionWrapper(fn, gradient_fn)``) and a metric
    function travel by reference, as Python pickles functions; so does
    ``exclude_from_weight_decay``'s choice (which Keras's copy drops)."""
    x, y = _data(5)
    opt = unrolled.optimizers.AdamW(0.01, weight_decay=0.1)
    loss = unrolled.losses.LossFunctionWrapper(cubed_error, cubed_error_gradient, name="cubed")
    ours = _with_functions(loss, peak, opt)
    opt.exclude_from_weight_decay(var_names=["bias"])
    ours.fit(x, y, **FIT)
    data = pickle.dumps(ours)
    names = [arg for op, arg, _ in pickletools.genops(data) if op.name.endswith("UNICODE")]
    assert {"cubed_error", "cubed_error_gradient", "peak", "rebuild"} <= set(names)
    twin = pickle.loads(data)
    assert twin.loss.fn is cubed_error and twin.loss.gradient_fn is cubed_error_gradient
    assert twin.loss.name == "cubed" and twin.optimizer._exclude_pattern.pattern == "bias"
    assert sorted(_same_continuation(ours, twin, x, y)) == ["loss", "mae", "peak"]


def test_a_lambda_deep_copies_but_does_not_pickle():
    x, y = _data(6)
    ours = _with_functions("mse", lambda a, b: np.max(np.abs(a - b), axis=-1),
                           unrolled.optimizers.RMSprop(0.01, momentum=0.5))
    ours.fit(x, y, **FIT)
    twin = copy.deepcopy(ours)
    _same_continuation(ours, twin, x, y)
    with pytest.raises((pickle.PicklingError, AttributeError), match="lambda"):
        pickle.dumps(ours)


def test_the_payload_is_data_read_as_files_are():
    ours = _sequential(unrolled)
    data = pickle.dumps(ours)
    globals_ = [arg for op, arg, _ in pickletools.genops(data) if op.name.endswith("UNICODE")]
    assert globals_[:2] == ["unrolled.models.pickling", "rebuild"]
    assert not any("numpy" in str(g) for g in globals_)  # arrays travel inside the bytes
    fn, (payload, functions, classes) = ours.__reduce__()
    assert fn is rebuild and isinstance(payload, bytes) and functions == () and classes == {}
    with pytest.raises(ModelFileError, match="zip"):
        rebuild(b"not an archive")
    with pytest.raises(ModelFileError, match="format"):
        rebuild(payload.replace(b"unrolled.pickle/1", b"unrolled.pickle/9"))
    back = rebuild(payload)
    assert back.compiled and back.optimizer.iterations == 0
    import io
    buf = io.BytesIO()                                  # an object array would need pickle
    np.savez(buf, __format__=np.frombuffer(b"unrolled.pickle/1", np.uint8),
             __config__=np.array([{"class_name": "Sequential"}], dtype=object))
    with pytest.raises(ModelFileError, match="dtype object"):
        rebuild(buf.getvalue())


def test_an_uncompiled_model_copies_its_weights(rng):
    x = rng.standard_normal((4, 6, 3)).astype("float32")
    ours = unrolled.Sequential([unrolled.Input((6, 3)), unrolled.layers.LSTM(4, name="lstm")])
    twin = pickle.loads(pickle.dumps(ours))
    assert not twin.compiled
    np.testing.assert_array_equal(twin.predict(x, verbose=0), ours.predict(x, verbose=0))


def test_custom_layers_and_cells_deep_copy(rng):
    from keras_way import define
    C = define(unrolled.layers, unrolled.ops)
    inp = unrolled.Input((6, 3))
    h = C.LinearTanh(4, name="lt")(inp)
    h = unrolled.layers.RNN(C.MinimalRNNCell(5, name="minimal"), name="rnn")(h)
    ours = unrolled.Model(inp, unrolled.layers.Dense(2, name="head")(h))
    ours.compile(optimizer="adam", loss="mse")
    x, y = _data(7)
    ours.fit(x, y, **FIT)
    twin = copy.deepcopy(ours)
    assert type(twin.get_layer("lt")) is C.LinearTanh
    _same_continuation(ours, twin, x, y)


def test_an_unbuilt_model_is_refused_with_the_reason():
    """(Keras copies an unbuilt Sequential by its config; unrolled's configs need the input
    shape, as its files do.)"""
    ours = unrolled.Sequential([unrolled.layers.LSTM(4)], name="unbuilt")
    with pytest.raises(ValueError, match="Cannot pickle or copy model 'unbuilt': Model "
                                         "'unbuilt' is not built"):
        copy.deepcopy(ours)


def test_subclassed_models_are_refused_by_name():
    class Net(unrolled.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.out = unrolled.layers.Dense(1)

        def call(self, inputs):
            return self.out(inputs)

    net = Net(name="net")
    for how in COPIES.values():
        with pytest.raises(TypeError, match="'net' \\(Net\\): it is a subclassed model"):
            how(net)


def test_compile_objects_of_other_classes_are_refused():
    class Half(unrolled.losses.MeanSquaredError):
        pass

    ours = _with_functions(Half(), "mae", "adam")
    with pytest.raises(TypeError, match="its loss .* neither one of unrolled's losses nor a "
                                        "Python function"):
        copy.deepcopy(ours)
