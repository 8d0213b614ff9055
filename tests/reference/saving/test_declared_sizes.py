"""Sizes declared in a file (issue 26.4): the loaders rebuild a model without running its
initializers (its weights come from the file), and a config declaring more weights than
the file can hold is refused before anything is allocated. A 18 KB .keras declaring
LSTM(6000) used to cost 66 s and 5.6 GB before its refusal."""
import io
import json
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest

from unrolled import initializers
from unrolled.layers import LSTM
from unrolled.layers.recurrent.lstm import _UnitForgetBias
from unrolled.io.safety import ModelFileError
from unrolled.models import load_model


def _keras_files(tmp_path):
    """A small model saved by Keras 3 as .keras and as legacy .h5."""
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(6, name="lstm"),
                              keras.layers.Dense(1, name="d")])
    paths = {ext: tmp_path / f"small{ext}" for ext in (".keras", ".h5")}
    for path in paths.values():
        model.save(path)
    return model, paths


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    """``_keras_files`` written once for the module: the tests read them, never change them
    (their altered copies go to their own folders)."""
    return _keras_files(tmp_path_factory.mktemp("declared"))


def _declare_units(path, units, out):
    """The same file with the LSTM's units changed in its config, nothing else."""
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as zin:
            config = json.loads(zin.read("config.json"))
            config["config"]["layers"][-2]["config"]["units"] = units
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as zout:
                for name in zin.namelist():
                    zout.writestr(name, json.dumps(config) if name == "config.json"
                                  else zin.read(name))
        out.write_bytes(buf.getvalue())
    else:
        out.write_bytes(path.read_bytes())
        with h5py.File(out, "r+") as f:
            config = json.loads(f.attrs["model_config"])
            for layer in config["config"]["layers"]:
                if layer["class_name"] == "LSTM":
                    layer["config"]["units"] = units
            f.attrs["model_config"] = json.dumps(config)
    return out


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_a_file_declaring_a_huge_layer_is_refused_at_once_in_little_memory(tmp_path, ext,
                                                                          keras_files):
    _, paths = keras_files
    bomb = _declare_units(paths[ext], 6000, tmp_path / f"bomb{ext}")
    assert bomb.stat().st_size < 100_000
    program = (
        "import sys, time\n"
        "from unrolled.io.safety import ModelFileError\n"
        "from unrolled.models import load_model\n"
        "t = time.perf_counter()\n"
        "try:\n"
        "    load_model(sys.argv[1])\n"
        "except ModelFileError as e:\n"
        "    print('refused:', e)\n"
        "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "print(round(time.perf_counter() - t, 3), peak[0] if peak else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", program, str(bomb)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("refused:") and "(6000, 24000)" in lines[0]
    assert "more than the file can hold" in lines[0]
    seconds, max_rss_kib = lines[-1].split()
    # The process's own peak (VmHWM: ru_maxrss would carry a forked parent's over exec).
    assert int(max_rss_kib) < 600 * 1024         # the weights alone would be 576 MB and more


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_loading_runs_no_initializer_and_gives_the_files_weights(ext, monkeypatch, keras_files):
    model, paths = keras_files

    def refuse(*args, **kwargs):
        raise AssertionError("an initializer ran while loading")
    classes = [c for c in vars(initializers).values()
               if isinstance(c, type) and issubclass(c, initializers.Initializer)]
    classes.append(_UnitForgetBias)
    for cls in classes:
        if "__call__" in vars(cls):
            monkeypatch.setattr(cls, "__call__", refuse)
    with pytest.raises(AssertionError, match="an initializer ran"):   # the patch bites
        LSTM(3).build((None, 2, 2))
    ours = load_model(paths[ext])
    for got, want in zip(ours.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_a_declared_shape_within_the_budget_but_not_the_files_is_still_refused(tmp_path,
                                                                               keras_files):
    _, paths = keras_files
    other = _declare_units(paths[".keras"], 7, tmp_path / "other.keras")
    with pytest.raises(ModelFileError, match="shape"):
        load_model(other)
