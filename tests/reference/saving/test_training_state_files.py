"""Nothing lost in the native file: a compiled, trained model saved as ``.unrolled.npz``
or legacy ``.h5`` keeps its training state (compile arguments, optimizer iterations,
learning rate and slots), and ``load_model`` (``compile=True``, as Keras) goes on where it
stopped: as the uninterrupted model and as Keras's own continuation from its ``.keras``/
``.h5`` round trip. Keras-written ``.h5`` files load with their optimizer weights, and
Keras reads unrolled's. ``include_optimizer=False`` and ``compile=False`` leave it out;
old ``.npz`` files without the state load uncompiled; hostile state is refused by name."""
import io
import json
import warnings

import h5py
import numpy as np
import pytest
from keras_ref import keras

import unrolled
from unrolled.io.safety import ModelFileError
from unrolled.models import load_model
from unrolled.saving import npz_model

FIT = dict(batch_size=8, shuffle=False, verbose=0)
FORMATS = [".unrolled.npz", ".h5"]


def _model(m, opt):
    model = m.Sequential([m.Input((6, 3)), m.layers.LSTM(4, name="lstm"),
                          m.layers.Dense(2, name="dense")], name="seq")
    optimizer = (m.optimizers.Adam(0.02) if opt == "adam"
                 else m.optimizers.SGD(0.05, momentum=0.9))
    # "mean_squared_error": Keras 3.15 cannot read back its own .h5 of loss="mse"
    model.compile(optimizer=optimizer, loss="mean_squared_error",
                  metrics=["mae", m.metrics.RootMeanSquaredError()])
    return model


def _data():
    rng = np.random.default_rng(11)
    return (rng.standard_normal((16, 6, 3)).astype("float32"),
            rng.standard_normal((16, 2)).astype("float32"))


def _quiet_save(model, path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.saving.save_model(model, path, **kwargs)


def _keras_from_h5(path):
    """A Keras model with the training state of a legacy .h5 file, read by Keras's own
    readers (``compile_args_from_training_config``, ``load_optimizer_weights_from_hdf5_
    group``). Keras 3.15.1's ``load_model`` does the same but builds the optimizer over
    ``model._trainable_variables``, which is empty for a Sequential or functional model:
    it then assigns only the iteration and learning rate, and the loaded model's ``fit``
    fails ("Unknown variable ..."). Here the optimizer is built over
    ``model.trainable_variables``, as that loader means to."""
    from keras.src.legacy.saving import legacy_h5_format, saving_utils
    model = keras.saving.load_model(path, compile=False)
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["training_config"])
        model.compile(**saving_utils.compile_args_from_training_config(config))
        model.optimizer.build(model.trainable_variables)
        values = [np.asarray(d) for d in
                  legacy_h5_format.load_optimizer_weights_from_hdf5_group(f)]
    assert len(values) == len(model.optimizer.variables)
    model.optimizer.set_weights(values)
    return model


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Keras, per optimizer: fit 2 epochs and save (.keras, .h5); its continuation from
    its own .h5 (2 epochs); then the original fits epoch 3, is saved as .h5 and read
    again, and epoch 4 is fitted by the copy and by the original."""
    x, y = _data()
    folder = tmp_path_factory.mktemp("training_state")
    out = {}
    for opt in ("adam", "sgd"):
        theirs = _model(keras, opt)
        theirs.fit(x, y, epochs=2, **FIT)
        _quiet_save(theirs, folder / f"{opt}.keras")
        _quiet_save(theirs, folder / f"{opt}.h5")
        from_h5 = _keras_from_h5(folder / f"{opt}.h5")
        ref = {"keras": folder / f"{opt}.keras", "h5": folder / f"{opt}.h5",
               "h5_optimizer": [v.numpy() for v in from_h5.optimizer.variables],
               "h5_continued": from_h5.fit(x, y, epochs=2, **FIT).history,
               "epoch3": theirs.fit(x, y, epochs=1, **FIT).history}
        _quiet_save(theirs, folder / f"{opt}-3.h5")
        again = _keras_from_h5(folder / f"{opt}-3.h5")
        ref["epoch4_via_h5"] = again.fit(x, y, epochs=1, **FIT).history
        ref["epoch4"] = theirs.fit(x, y, epochs=1, **FIT).history
        out[opt] = ref
    return out


def _close(got, want, rtol=1e-5):
    """Histories equal to ``rtol``. A model read from a legacy .h5 logs "mae" as
    "mean_absolute_error" (Keras's legacy reader builds the metric object from the name),
    in Keras as in unrolled: the values are compared under one name."""
    got, want = ({("mae" if k == "mean_absolute_error" else k): v for k, v in h.items()}
                 for h in (got, want))
    assert set(got) == set(want) == {"loss", "mae", "root_mean_squared_error"}
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, err_msg=key)


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_a_keras_h5_loads_with_its_optimizer_state_and_goes_on_as_in_keras(opt, reference):
    ref = reference[opt]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no "state skipped" warning
        ours = load_model(ref["h5"])
    assert ours.compiled and ours.optimizer.iterations == 4
    assert type(ours.optimizer).__name__ == ("Adam" if opt == "adam" else "SGD")
    mine = [v.numpy() for v in ours.optimizer.variables]
    assert len(mine) == len(ref["h5_optimizer"])
    for a, b in zip(mine, ref["h5_optimizer"]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    x, y = _data()
    _close(ours.fit(x, y, epochs=2, **FIT).history, ref["h5_continued"])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_saved_and_loaded_goes_on_as_uninterrupted_and_as_keras(opt, fmt, reference, tmp_path):
    """From Keras's state after 2 epochs, unrolled fits epoch 3, saves, loads, fits epoch
    4: as the model that was not saved, as Keras's model, and as Keras's own copy through
    its .h5; for .h5, Keras reads unrolled's file and goes on the same way."""
    ref = reference[opt]
    x, y = _data()
    ours = load_model(ref["keras"])
    _close(ours.fit(x, y, epochs=1, **FIT).history, ref["epoch3"])
    path = tmp_path / f"m{fmt}"
    ours.save(path)
    again = load_model(path)
    assert again.compiled and again.optimizer.iterations == ours.optimizer.iterations == 6
    for a, b in zip(again.optimizer.variables, ours.optimizer.variables, strict=True):
        assert a.path == b.path
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    got = again.fit(x, y, epochs=1, **FIT).history
    _close(got, ours.fit(x, y, epochs=1, **FIT).history, rtol=1e-6)
    _close(got, ref["epoch4"])
    _close(got, ref["epoch4_via_h5"])
    if fmt == ".h5":
        assert keras.saving.load_model(path).compiled   # Keras reads unrolled's training_config
        theirs = _keras_from_h5(path)
        assert int(theirs.optimizer.iterations.numpy()) == 6
        _close(theirs.fit(x, y, epochs=1, **FIT).history, ref["epoch4"])


def test_the_h5_training_state_is_laid_out_as_keras_writes_it(reference, tmp_path):
    ours = load_model(reference["adam"]["keras"])
    ours.save(tmp_path / "ours.h5")
    with h5py.File(reference["adam"]["h5"], "r") as f:
        want = json.loads(f.attrs["training_config"])
        want_names = list(f["optimizer_weights"].attrs["weight_names"])
    with h5py.File(tmp_path / "ours.h5", "r") as f:
        got = json.loads(f.attrs["training_config"])
        got_names = list(f["optimizer_weights"].attrs["weight_names"])
        shapes = [f["optimizer_weights"][n].shape for n in got_names]
    assert got == want
    assert len(got_names) == len(want_names) == 12
    assert [n.split("/")[-1] for n in got_names[:2]] == ["iteration", "learning_rate"]
    assert [n.rsplit("_", 1)[-1] for n in got_names[2:]] == \
        [n.rsplit("_", 1)[-1] for n in want_names[2:]]
    assert shapes[2:4] == [(3, 16), (3, 16)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_compile_false_and_include_optimizer_false(fmt, reference, tmp_path):
    x, y = _data()
    ours = load_model(reference["sgd"]["keras"])
    ours.save(tmp_path / f"full{fmt}")
    bare = load_model(tmp_path / f"full{fmt}", compile=False)
    assert not bare.compiled
    unrolled.saving.save_model(ours, tmp_path / f"lean{fmt}", include_optimizer=False)
    lean = load_model(tmp_path / f"lean{fmt}")
    assert not lean.compiled
    for model in (bare, lean):
        np.testing.assert_array_equal(model.predict(x, verbose=0), ours.predict(x, verbose=0))
    if fmt == ".h5":                                    # the same members as Keras's file
        theirs = keras.saving.load_model(reference["sgd"]["h5"])
        _quiet_save(theirs, tmp_path / "theirs.h5", include_optimizer=False)
        layout = []
        for name in ("theirs.h5", f"lean{fmt}"):
            with h5py.File(tmp_path / name, "r") as f:
                layout.append((sorted(f.attrs), sorted(f)))
        assert layout[0] == layout[1] == (["backend", "keras_version", "model_config"],
                                          ["model_weights"])
    else:
        with np.load(tmp_path / f"lean{fmt}", allow_pickle=False) as data:
            assert not [k for k in data.files if "compile" in k or "optimizer" in k]


def test_include_optimizer_false_in_a_keras_file(reference, tmp_path):
    """Keras 3 ignores include_optimizer for .keras; unrolled honours it."""
    ours = load_model(reference["sgd"]["keras"])
    unrolled.saving.save_model(ours, tmp_path / "lean.keras", include_optimizer=False)
    assert not load_model(tmp_path / "lean.keras").compiled
    assert not keras.saving.load_model(tmp_path / "lean.keras").compiled


def _npz_members(path):
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _write_npz(path, members):
    buf = io.BytesIO()
    np.savez(buf, **members)
    path.write_bytes(buf.getvalue())


def test_an_old_npz_without_the_state_loads_uncompiled(tmp_path):
    """A file as unrolled wrote it before the training state was saved: format, config,
    weights."""
    x, y = _data()
    ours = _model(unrolled, "adam")
    ours.fit(x, y, epochs=1, **FIT)
    old = {"__format__": np.frombuffer(b"unrolled.npz/1", np.uint8),
           "__config__": np.frombuffer(json.dumps(
               unrolled.saving.graph.model_config(ours)).encode(), np.uint8)}
    for group, variables in unrolled.saving.graph.weight_groups(ours, ours.layers):
        for i, var in enumerate(variables):
            old[f"{group}/vars/{i}"] = var.numpy()
    _write_npz(tmp_path / "old.unrolled.npz", old)
    back = load_model(tmp_path / "old.unrolled.npz")
    assert not back.compiled
    np.testing.assert_array_equal(back.predict(x, verbose=0), ours.predict(x, verbose=0))
    ours.save(tmp_path / "new.unrolled.npz")
    assert set(_npz_members(tmp_path / "new.unrolled.npz")) - set(old) == \
        {"__compile__"} | {f"optimizer/vars/{i}" for i in range(12)}


@pytest.fixture
def saved(tmp_path):
    x, y = _data()
    ours = _model(unrolled, "adam")
    ours.fit(x, y, epochs=1, **FIT)
    ours.save(tmp_path / "m.unrolled.npz")
    return _npz_members(tmp_path / "m.unrolled.npz")


def _compile_text(members, **edits):
    state = json.loads(members["__compile__"].tobytes())
    state.update(edits)
    return np.frombuffer(json.dumps(state).encode(), np.uint8)


HOSTILE = {
    "slot of the wrong shape": (lambda m: {**m, "optimizer/vars/2": np.zeros((4, 16), "f")},
                                "optimizer/vars/2 has shape \\(4, 16\\)"),
    "slot of the wrong dtype": (lambda m: {**m, "optimizer/vars/3": m["optimizer/vars/3"]
                                           .astype("float64")},
                                "optimizer/vars/3 has shape .* dtype float64"),
    "iteration as a float": (lambda m: {**m, "optimizer/vars/0": np.array(3.0, "f")},
                             "optimizer/vars/0 .* dtype float32"),
    "negative iteration": (lambda m: {**m, "optimizer/vars/0": np.array(-5, np.int64)},
                           "optimizer/vars/0 .* iteration count"),
    "missing slot": (lambda m: {k: v for k, v in m.items() if k != "optimizer/vars/11"},
                     "optimizer/vars/11 is missing"),
    "a slot too many": (lambda m: {**m, "optimizer/vars/12": np.zeros(2, "f")},
                        "optimizer/vars/12"),
    "slots without __compile__": (lambda m: {k: v for k, v in m.items() if k != "__compile__"},
                                  "no __compile__"),
    "seen out of range": (lambda m: {**m, "__compile__": _compile_text(m, seen=[0, 1, 99])},
                          "__compile__ seen"),
    "seen repeated": (lambda m: {**m, "__compile__": _compile_text(m, seen=[0, 0, 1, 2, 3])},
                      "__compile__ seen"),
    "__compile__ as floats": (lambda m: {**m, "__compile__": m["__compile__"].astype("f")},
                              "__compile__ has dtype float32"),
    "__compile__ not JSON": (lambda m: {**m, "__compile__": np.frombuffer(b"{x", np.uint8)},
                             "__compile__ .* not valid JSON"),
    "unknown optimizer": (lambda m: {**m, "__compile__": _compile_text(
        m, optimizer={"class_name": "os.system", "config": {}})}, "not one of unrolled's"),
    "an object array": (lambda m: {**m, "optimizer/vars/4": np.array([{}], dtype=object)},
                        "dtype object"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_training_state_is_refused_naming_the_field(case, saved, tmp_path):
    change, message = HOSTILE[case]
    _write_npz(tmp_path / "bad.unrolled.npz", change(saved))
    with pytest.raises(ModelFileError, match=message):
        load_model(tmp_path / "bad.unrolled.npz")
    assert not load_model(tmp_path / "bad.unrolled.npz", compile=False).compiled


def cubed_error(y_true, y_pred):
    return np.mean(np.abs(y_pred - y_true) ** 3, axis=-1)


def cubed_error_gradient(y_true, y_pred):
    d = y_pred - y_true
    return 3 * d * np.abs(d) / d.shape[-1]


def peak(y_true, y_pred):
    return np.max(np.abs(y_pred - y_true), axis=-1)


def _with(loss, metrics):
    model = unrolled.Sequential([unrolled.Input((6, 3)), unrolled.layers.GRU(3, name="gru"),
                                 unrolled.layers.Dense(2, name="dense")], name="fn")
    model.compile(optimizer=unrolled.optimizers.RMSprop(0.01, momentum=0.5), loss=loss,
                  metrics=metrics)
    return model


@pytest.fixture
def registered(monkeypatch):
    """cubed_error, its gradient and peak registered for this test only."""
    from unrolled import saving
    for fn in (cubed_error, cubed_error_gradient, peak):
        key = f"S7Test>{fn.__name__}"
        monkeypatch.setitem(saving.GLOBAL_CUSTOM_OBJECTS, key, fn)
        monkeypatch.setitem(saving.GLOBAL_CUSTOM_NAMES, fn, key)
    return saving.GLOBAL_CUSTOM_OBJECTS


def test_functions_travel_by_name(registered, tmp_path, monkeypatch):
    x, y = _data()
    loss = unrolled.losses.LossFunctionWrapper(cubed_error, cubed_error_gradient, name="cubed")
    ours = _with(loss, [peak, unrolled.metrics.mean_absolute_error])
    ours.fit(x, y, epochs=1, **FIT)
    ours.save(tmp_path / "f.unrolled.npz")
    state = json.loads(_npz_members(tmp_path / "f.unrolled.npz")["__compile__"].tobytes())
    assert state["loss"]["fn"] == {"function": "S7Test>cubed_error"}
    assert state["metrics"] == [{"function": "S7Test>peak"},
                                {"function": "mean_absolute_error"}]
    again = load_model(tmp_path / "f.unrolled.npz")
    assert again.loss.fn is cubed_error and again.loss.gradient_fn is cubed_error_gradient
    assert again._compile_args["metrics"] == [peak, unrolled.metrics.mean_absolute_error]
    got = again.fit(x, y, epochs=1, **FIT).history
    want = ours.fit(x, y, epochs=1, **FIT).history
    assert sorted(got) == ["loss", "mean_absolute_error", "peak"]
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-6)
    monkeypatch.delitem(registered, "S7Test>peak")     # a program that did not register it
    with pytest.raises(ModelFileError, match="'S7Test>peak', which is not registered"):
        load_model(tmp_path / "f.unrolled.npz")
    assert not load_model(tmp_path / "f.unrolled.npz", compile=False).compiled


def test_a_registered_function_in_h5(registered, tmp_path, monkeypatch):
    x, y = _data()
    ours = _with("mse", [peak])
    ours.fit(x, y, epochs=1, **FIT)
    ours.save(tmp_path / "f.h5")
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert json.loads(f.attrs["training_config"])["metrics"] == ["S7Test>peak"]
    again = load_model(tmp_path / "f.h5")
    assert again._compile_args["metrics"] == [peak] and again.optimizer.iterations == 2
    monkeypatch.delitem(registered, "S7Test>peak")
    with pytest.warns(UserWarning, match="not compiled .*'S7Test>peak'"):
        assert not load_model(tmp_path / "f.h5").compiled


@pytest.mark.parametrize("fmt", FORMATS)
def test_functions_a_file_cannot_name_are_refused_by_name(fmt, tmp_path):
    for metric, name in ((peak, "peak"), (lambda a, b: np.abs(a - b), "lambda")):
        ours = _with("mse", [metric])
        with pytest.raises(TypeError, match=f"Cannot save the training state of model 'fn'.*"
                                            f"metric <function .*{name}.* neither registered"):
            ours.save(tmp_path / f"f{fmt}")
        unrolled.saving.save_model(ours, tmp_path / f"f{fmt}", include_optimizer=False)
        assert not load_model(tmp_path / f"f{fmt}").compiled
    wrapped = _with(unrolled.losses.LossFunctionWrapper(cubed_error), [])
    if fmt == ".h5":
        with pytest.raises(TypeError, match="LossFunctionWrapper, which a legacy .h5"):
            wrapped.save(tmp_path / "w.h5")


def test_npz_keeps_weight_decay_exclusions(tmp_path):
    x, y = _data()
    ours = _model(unrolled, "adam")
    ours.compile(optimizer=unrolled.optimizers.AdamW(0.01, weight_decay=0.1), loss="mse")
    ours.optimizer.exclude_from_weight_decay(var_names=["bias"])
    ours.fit(x, y, epochs=1, **FIT)
    ours.save(tmp_path / "w.unrolled.npz")
    again = load_model(tmp_path / "w.unrolled.npz")
    assert again.optimizer._exclude_pattern.pattern == "bias"
    np.testing.assert_allclose(again.fit(x, y, epochs=1, **FIT).history["loss"],
                               ours.fit(x, y, epochs=1, **FIT).history["loss"], rtol=1e-6)


def test_the_pickle_payload_and_the_file_are_one_layout(tmp_path):
    """pickle and .unrolled.npz are written by one function: same members, same arrays."""
    x, y = _data()
    ours = _model(unrolled, "sgd")
    ours.fit(x, y, epochs=1, **FIT)
    ours.save(tmp_path / "m.unrolled.npz")
    payload = ours.__reduce__()[1][0]
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        pickled = {k: data[k] for k in data.files}
    filed = _npz_members(tmp_path / "m.unrolled.npz")
    assert set(pickled) == set(filed)
    assert bytes(pickled["__format__"]) == b"unrolled.pickle/1"
    for key in set(filed) - {"__format__"}:
        np.testing.assert_array_equal(pickled[key], filed[key])
    assert npz_model.FORMAT == "unrolled.npz/1"


def test_hostile_h5_optimizer_weights(tmp_path):
    """A listed dataset of the wrong shape or dtype is refused by name; a list of another
    length is skipped with Keras's warning (the optimizer starts afresh, compiled)."""
    x, y = _data()
    ours = _model(unrolled, "adam")
    ours.fit(x, y, epochs=1, **FIT)
    ours.save(tmp_path / "m.h5")
    data = (tmp_path / "m.h5").read_bytes()

    def edited(edit):
        path = tmp_path / "bad.h5"
        path.write_bytes(data)
        with h5py.File(path, "r+") as f:
            group = f["optimizer_weights"]
            edit(group, list(group.attrs["weight_names"]))
        return path

    def reshape(group, names):
        del group[names[2]]
        group.create_dataset(names[2], data=np.zeros((4, 16), "f"))

    def retype(group, names):
        del group[names[0]]
        group.create_dataset(names[0], data=np.array(2.0))

    def shorten(group, names):
        group.attrs["weight_names"] = [n.encode() for n in names[:-1]]

    with pytest.raises(ModelFileError, match="optimizer_weights/adam/lstm.*kernel_momentum.* "
                                             "shape \\(4, 16\\)"):
        load_model(edited(reshape))
    with pytest.raises(ModelFileError, match="optimizer_weights/adam/iteration has dtype float64"):
        load_model(edited(retype))
    with pytest.warns(UserWarning, match="optimizer_weights holds 11 variables.*has 12"):
        model = load_model(edited(shorten))
    assert model.compiled and model.optimizer.iterations == 0
