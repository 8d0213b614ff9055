"""Issue 24, items 5-14, as a newcomer meets them: what the audit of those items found
untested or broken, each checked the way a user runs into it.

* 5: ``unrolled example NAME --out DIR`` writes under DIR alone; ``run(out_dir=None)``
  writes nothing anywhere (the dante example made a folder named ``None``... it crashed).
* 6: with h5py, onnx or matplotlib unimportable in the processes a command starts (a stub
  module on PYTHONPATH that raises, as a missing or broken install does), the command
  names the extra in one stderr line, exits 1 and writes nothing; ``example dante`` skips
  its report when matplotlib is installed but does not import.
* 7: ``verify`` (and ``demo``) import Keras without TensorFlow's native log lines on
  stderr.
* 8: in Jupyter (``ipykernel`` loaded, the stream no terminal) the epoch line is written once.
* 10: empty batches on a stateful model (the kept states untouched) and on models with
  several outputs give every output with 0 rows, in the shapes Keras's model declares.
* 12: ``forward`` and ``call`` of every kind of unbuilt layer build it from the input, as
  ``layer(x)`` does; a cell's ``get_config`` is a Keras 3 cell config (Keras reads it back
  with its name and dtype).
* 14: the README's extras are the pyproject's, and each extra the library's messages name
  exists; the build system requires the setuptools the SPDX license field needs.
"""
import io
import os
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

import unrolled
from unrolled import cli, progbar
from unrolled import layers as L
from unrolled.models import Model, Sequential

ROOT = Path(__file__).resolve().parents[2]


# --- item 5: where the examples write ---------------------------------------------------------
def test_example_out_option_puts_every_file_under_the_folder_given(tmp_path, monkeypatch,
                                                                    capsys):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "deep" / "figures"
    assert cli.main(["example", "sine", "--quick", "--out", str(target)]) == 0
    assert f"figures and files go to {target}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
    written = [p for p in (tmp_path / "deep").rglob("*") if p.is_file()]
    assert written and all(p.parent == target for p in written)


def test_an_example_without_out_dir_writes_nothing(tmp_path, monkeypatch):
    """``run(out_dir=None)`` saves no plots (the examples' docstring); the dante example's
    explain report followed the folder into ``os.makedirs(None)`` after the training."""
    from unrolled.examples import dante
    monkeypatch.chdir(tmp_path)
    r = dante.run(quick=True, out_dir=None, verbose=False)
    assert r["plots"] == [] and r["explain"] is None
    assert list(tmp_path.iterdir()) == []


# --- item 6: missing optional dependencies, in every process a command starts ---------------
def _blocked(tmp_path, *modules):
    """A PYTHONPATH folder whose ``<module>.py`` raise as a missing install does; it holds
    in the HDF5 parsing process too (which starts from the environment)."""
    folder = tmp_path / "blocked"
    folder.mkdir(exist_ok=True)
    for name in modules:
        (folder / f"{name}.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{name}'\", name={name!r})\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(folder)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return env


def _command(env, cwd, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "unrolled", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    model = Sequential([L.Input((4, 2)), L.LSTM(3, name="l"), L.Dense(1, name="d")],
                       name="m")
    model.save(folder / "m.unrolled.npz")
    model.save(folder / "m.keras")
    return folder


@pytest.mark.parametrize("module,args,extra,unwritten", [
    ("h5py", ("inspect", "m.keras"), "h5", None),
    ("h5py", ("convert", "m.unrolled.npz", "out.keras"), "h5", "out.keras"),
    ("onnx", ("convert", "m.unrolled.npz", "out.onnx"), "onnx", "out.onnx"),
])
def test_a_command_names_the_missing_extra_in_one_line(module, args, extra, unwritten,
                                                       model_files, tmp_path):
    out = _command(_blocked(tmp_path, module), model_files, *args)
    assert out.returncode == 1, (out.stdout[-1000:], out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert lines[0].startswith(f"unrolled {args[0]}: error: ")
    assert f"pip install 'unrolled[{extra}]'" in lines[0] and module in lines[0]
    if unwritten is not None:
        assert not (model_files / unwritten).exists()


def test_dante_skips_its_report_when_matplotlib_does_not_import(tmp_path):
    """A matplotlib that is found but fails to import (a broken install) is missing too:
    the example trained, then ended in the report's ImportError."""
    out_dir = tmp_path / "out"
    out = _command(_blocked(tmp_path, "matplotlib"), tmp_path, "example", "dante", "--quick",
                   "--out", str(out_dir))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no explain report is written (pip install 'unrolled[plot]'" in out.stdout
    assert "no plots are saved" in out.stdout and "finished in" in out.stdout
    assert not out_dir.exists() or not list(out_dir.iterdir())


# --- item 7: nothing on stderr but the command's own line ---------------------------------
def test_a_framework_is_imported_without_its_native_stderr_lines(tmp_path, monkeypatch, capfd):
    """TensorFlow's C++ logging wrote 4 lines at import whatever TF_CPP_MIN_LOG_LEVEL said,
    above ``verify``'s one-line error (and under ``demo``'s clean output). A module that
    writes to file descriptor 2 as it is imported stands for it here."""
    from unrolled.interop import verify
    from unrolled.optional import import_quietly
    (tmp_path / "noisy_framework.py").write_text(
        "import os, sys\nos.write(2, b'native log line\\n')\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "noisy_framework", raising=False)
    print("before", file=sys.stderr)
    assert import_quietly("noisy_framework").VALUE == 42
    print("after", file=sys.stderr)
    assert capfd.readouterr().err == "before\nafter\n"
    with pytest.raises(ImportError):
        import_quietly("no_such_framework_here")
    monkeypatch.setitem(sys.modules, "noisy_framework", None)     # blocked, as tests block
    with pytest.raises(ImportError):
        import_quietly("noisy_framework")
    # verify's Keras goes through it (the file: Keras 3 wrote it, so Keras 3 compares)
    asked = []
    monkeypatch.setattr("unrolled.optional.import_quietly",
                        lambda name: asked.append(name) or types.SimpleNamespace(
                            __version__="3.x"))
    model = Sequential([L.Input((4, 2)), L.Dense(1, name="d")], name="m")
    model.save(tmp_path / "m.keras")
    verify.reference_keras(tmp_path / "m.keras")
    assert asked == ["keras"]


# --- item 8: the progress bar in Jupyter --------------------------------------------------------
def test_in_jupyter_the_epoch_line_is_redrawn_then_written_once(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    now = [0.0]
    monkeypatch.setattr(progbar.time, "perf_counter", lambda: now[0])
    stream = io.StringIO()                              # Jupyter's stdout is no terminal
    bar = progbar.Progbar(100, stream=stream, wait_for_finalize=True)
    for step in range(1, 101):
        now[0] += 0.01                                  # 1 s in all: about 20 redraws
        bar.update(step, {"loss": 0.5})
    bar.update(100, {"loss": 0.5, "val_loss": 0.25}, finalize=True)
    bar.update(100, {"loss": 0.5}, finalize=True)
    text = stream.getvalue()
    assert 1 / progbar.Progbar.interval - 2 <= text.count("\r") <= 1 / progbar.Progbar.interval + 2
    assert text.count("\n") == 1 and text.count("val_loss") == 1
    assert text.endswith("val_loss: 0.2500\n")


# --- item 10: empty batches ---------------------------------------------------------------------
def _stateful(keras_or_unrolled, bidirectional=False):
    lib = keras_or_unrolled
    rnn = lib.layers.LSTM(5, stateful=True, name="rnn")
    if bidirectional:
        rnn = lib.layers.Bidirectional(lib.layers.GRU(5, stateful=True), name="bi")
    return lib.Sequential([lib.Input(batch_shape=(4, 7, 3)), rnn,
                           lib.layers.Dense(2, name="out")], name="stateful")


def _multi_output(lib):
    a = lib.Input((7, 3), name="a")
    seq, h, c = lib.layers.LSTM(5, return_sequences=True, return_state=True, name="l")(a)
    both = lib.layers.Bidirectional(lib.layers.GRU(4, return_sequences=True), merge_mode=None,
                                    name="bi")(seq)
    return lib.Model(a, [lib.layers.Dense(2, name="d")(h), c, *both], name="multi")


@pytest.fixture(scope="module")
def keras_shapes():
    """The output shapes Keras 3 declares for the same models."""
    import keras
    return {"stateful": [_stateful(keras).output_shape],
            "stateful_bi": [_stateful(keras, True).output_shape],
            "multi": list(_multi_output(keras).output_shape)}


@pytest.mark.parametrize("case", ["stateful", "stateful_bi", "multi"])
def test_empty_batches_give_every_output_with_0_rows(case, keras_shapes):
    model = {"stateful": lambda: _stateful(unrolled),
             "stateful_bi": lambda: _stateful(unrolled, True),
             "multi": lambda: _multi_output(unrolled)}[case]()
    want = [(0,) + tuple(s[1:]) for s in keras_shapes[case]]
    empty = np.zeros((0, 7, 3), np.float32)
    for how, run in [("predict", lambda: model.predict(empty, verbose=0)),
                     ("predict_on_batch", lambda: model.predict_on_batch(empty)),
                     ("__call__", lambda: model(empty))]:
        outs = run()
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        assert [np.shape(y) for y in outs] == want, how
        assert all(np.asarray(y).dtype == np.float32 for y in outs), how


@pytest.mark.parametrize("bidirectional", [False, True])
def test_an_empty_batch_leaves_a_stateful_models_states_alone(bidirectional, rng):
    """Between two real batches, an empty one changes nothing: the second batch's outputs
    are those of a twin model that never saw it."""
    model, twin = _stateful(unrolled, bidirectional), _stateful(unrolled, bidirectional)
    twin.set_weights(model.get_weights())
    x = rng.normal(size=(4, 7, 3)).astype("float32")
    model.predict(x, verbose=0)
    twin.predict(x, verbose=0)
    rnn = model.layers[0]
    rnns = [rnn.forward_layer, rnn.backward_layer] if bidirectional else [rnn]
    kept = [[s.copy() for s in r.states] for r in rnns]
    assert model.predict(np.zeros((0, 7, 3), np.float32), verbose=0).shape == (0, 2)
    assert np.shape(model(np.zeros((0, 7, 3), np.float32))) == (0, 2)
    for r, states in zip(rnns, kept):
        assert [s.shape for s in r.states] == [(4, 5)] * len(states)
        for s, t in zip(r.states, states):
            np.testing.assert_allclose(s, t, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x, verbose=0), twin.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-7)


# --- item 12: unbuilt layers and cells --------------------------------------------------------
def _x(rng, *shape):
    return rng.normal(size=shape).astype("float32")


UNBUILT = {
    "Dense": (lambda: L.Dense(4), lambda r: _x(r, 2, 5, 3)),
    "Conv1D": (lambda: L.Conv1D(4, 2), lambda r: _x(r, 2, 5, 3)),
    "SeparableConv1D": (lambda: L.SeparableConv1D(4, 2), lambda r: _x(r, 2, 5, 3)),
    "LayerNormalization": (lambda: L.LayerNormalization(), lambda r: _x(r, 2, 5, 3)),
    "BatchNormalization": (lambda: L.BatchNormalization(), lambda r: _x(r, 2, 5, 3)),
    "PReLU": (lambda: L.PReLU(), lambda r: _x(r, 2, 5, 3)),
    "Embedding": (lambda: L.Embedding(10, 3), lambda r: r.integers(0, 10, (2, 5))),
    "TimeDistributed": (lambda: L.TimeDistributed(L.Dense(4)), lambda r: _x(r, 2, 5, 3)),
    "Bidirectional": (lambda: L.Bidirectional(L.LSTM(4, return_sequences=True)),
                      lambda r: _x(r, 2, 5, 3)),
    "RNN(stacked cells)": (lambda: L.RNN([L.LSTMCell(4), L.GRUCell(2)]),
                           lambda r: _x(r, 2, 5, 3)),
    "Attention": (lambda: L.Attention(), lambda r: [_x(r, 2, 5, 3), _x(r, 2, 6, 3)]),
    "MultiHeadAttention": (lambda: L.MultiHeadAttention(2, 3),
                           lambda r: [_x(r, 2, 5, 3), _x(r, 2, 6, 3), _x(r, 2, 6, 3)]),
}


@pytest.mark.parametrize("kind", list(UNBUILT))
def test_forward_and_call_build_any_unbuilt_layer(kind, rng):
    make, data = UNBUILT[kind]
    x = data(rng)
    for method in ("forward", "call"):
        layer = make()
        assert not layer.built
        y = layer.forward(x)[0] if method == "forward" else layer.call(x)
        assert layer.built, method
        called = layer(*x) if kind == "MultiHeadAttention" else layer(x)   # mha(q, v, k)
        np.testing.assert_allclose(y, called, rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def keras_cells():
    import keras
    return keras


@pytest.mark.parametrize("kind", ["SimpleRNNCell", "LSTMCell", "GRUCell"])
def test_a_cells_config_is_a_keras_cell_config(kind, keras_cells):
    """Every key unrolled writes is one Keras 3 writes, with Keras's value for the same
    arguments (``dtype``: Keras writes its policy, whose name is unrolled's string), and
    Keras reads the config back with its name and dtype."""
    keras = keras_cells
    args = dict(name="my_cell", dtype="float64", dropout=0.25, recurrent_dropout=0.5, seed=7,
                use_bias=False, activation="relu")
    ours = getattr(L, kind)(4, **args).get_config()
    theirs = getattr(keras.layers, kind)(4, **args).get_config()
    assert set(ours) <= set(theirs), sorted(set(ours) - set(theirs))
    assert theirs["dtype"]["config"]["name"] == ours["dtype"] == "float64"
    for key in set(ours) - {"dtype"}:
        assert ours[key] == theirs[key], key
    again = getattr(keras.layers, kind).from_config(ours)
    assert (again.name, again.dtype_policy.name, again.units) == ("my_cell", "float64", 4)


# --- item 14: packaging --------------------------------------------------------------------
def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_build_system_and_license_metadata():
    project = _pyproject()
    requires = project["build-system"]["requires"]
    match = [re.fullmatch(r"setuptools\s*>=\s*(\d+)", r.replace(" ", "")) for r in requires]
    assert any(m and int(m.group(1)) >= 77 for m in match), requires
    meta = project["project"]
    assert meta["license"] == "MIT" and meta["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert any(c.startswith("Programming Language :: Python :: 3") for c in meta["classifiers"])
    assert not any(c.startswith("License ::") for c in meta["classifiers"])   # setuptools 77


def test_readme_lists_the_extras_pyproject_defines_and_the_messages_name():
    from unrolled.optional import EXTRAS
    extras = set(_pyproject()["project"]["optional-dependencies"])
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"`pip install [^`]*`", readme)
    table = re.findall(r"^\| `([^|]+)` *\|", readme, flags=re.M)
    listed = {name.strip("` ") for row in table for name in row.split(",")}
    assert listed == extras, (listed, extras)
    assert set(EXTRAS.values()) <= extras
    for extra in set(re.findall(r"unrolled\[(\w+)\]", "".join(
            p.read_text() for p in (ROOT / "src" / "unrolled").rglob("*.py")))):
        assert extra in extras, extra
