"""Model files are data, never code: hostile and broken files fail fast with clear errors."""
import io
import json
import os
import time
import zipfile

import h5py
import numpy as np
import pytest

from keras_ref import keras
from unrolled.io.safety import ModelFileError, UnsafeModelError, UnsupportedModelError
from unrolled.layers import LSTM, Dense, Input
from unrolled.models import Sequential, load_model, save_model
from unrolled.saving.model_files import load_weights, save_weights

L = keras.layers


@pytest.fixture
def ours(tmp_path):
    model = Sequential([Input((5, 3)), LSTM(4), Dense(2)])
    paths = {ext: tmp_path / f"m{ext}" for ext in (".keras", ".h5", ".unrolled.npz")}
    for path in paths.values():
        save_model(model, path)
    save_weights(model, tmp_path / "m.weights.h5")
    paths[".weights.h5"] = tmp_path / "m.weights.h5"
    return model, paths


def rewrite_config(src, dst, edit):
    """Copy a .keras archive, passing config.json through ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "config.json":
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(name, data)


def test_lambda_refused_listing_supported(tmp_path):
    i = keras.Input((5, 3))
    model = keras.Model(i, L.Lambda(lambda x: x * 2)(L.LSTM(2, return_sequences=True)(i)))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(UnsafeModelError, match=r"Lambda holds Python code.*Supported classes: .*LSTM"):
        load_model(tmp_path / "lambda.keras")


@pytest.mark.parametrize("field,value", [("module", "evil.layers"),
                                         ("registered_name", "evil>MyLSTM")])
def test_custom_objects_refused(ours, tmp_path, field, value):
    def edit(cfg):
        cfg["config"]["layers"][1][field] = value
    rewrite_config(ours[1][".keras"], tmp_path / "custom.keras", edit)
    with pytest.raises(UnsafeModelError, match="custom object"):
        load_model(tmp_path / "custom.keras")


def test_unknown_class_named(tmp_path):
    model = keras.Sequential([keras.Input((5, 3)), L.Conv1DTranspose(2, 2), L.GRU(2)])
    model.save(tmp_path / "conv.keras")
    with pytest.raises(UnsupportedModelError,
                       match=r"'Conv1DTranspose' is not supported.*GRU.*LSTM"):
        load_model(tmp_path / "conv.keras")


def test_unknown_and_unsupported_options_named(ours, tmp_path):
    model = keras.Sequential([keras.Input((5, 3)), L.LSTM(2, activity_regularizer="OrthogonalRegularizer")])
    model.save(tmp_path / "reg.keras")
    loaded = load_model(tmp_path / "reg.keras")       # OrthogonalRegularizer: not implemented
    loaded.compile(loss="mse", optimizer="sgd")        # only matters to training, which
    with pytest.raises(NotImplementedError, match="activity_regularizer"):   # refuses it
        loaded.fit(np.zeros((2, 5, 3)), np.zeros((2, 2)), verbose=0)

    def edit(cfg):
        cfg["config"]["layers"][1]["config"]["peephole"] = True
    rewrite_config(ours[1][".keras"], tmp_path / "opt.keras", edit)
    with pytest.raises(UnsupportedModelError, match=r"'peephole' is not supported.*units"):
        load_model(tmp_path / "opt.keras")

    def activation(cfg):
        cfg["config"]["layers"][2]["config"]["activation"] = "sparsemax"   # (gelu is read now)
    rewrite_config(ours[1][".keras"], tmp_path / "act.keras", activation)
    with pytest.raises(UnsupportedModelError, match="sparsemax.*tanh"):
        load_model(tmp_path / "act.keras")


@pytest.mark.parametrize("link", ["external", "soft"])
def test_hdf5_links_refused(ours, tmp_path, link):
    (tmp_path / "other.h5").write_bytes(ours[1][".weights.h5"].read_bytes())
    for ext in (".h5", ".weights.h5"):
        bad = tmp_path / f"link{ext}"
        bad.write_bytes(ours[1][ext].read_bytes())
        with h5py.File(bad, "r+") as f:
            f["sneaky"] = (h5py.ExternalLink(str(tmp_path / "other.h5"), "/") if link == "external"
                           else h5py.SoftLink("/vars" if ext == ".weights.h5" else "/model_weights"))
        with pytest.raises(UnsafeModelError, match="Link"):
            load_weights(ours[0], bad)
        if ext == ".h5":
            with pytest.raises(UnsafeModelError, match="Link"):
                load_model(bad)


def test_huge_declared_shape_fails_fast_h5(ours, tmp_path):
    bad = tmp_path / "huge.weights.h5"
    bad.write_bytes(ours[1][".weights.h5"].read_bytes())
    with h5py.File(bad, "r+") as f:
        group = f["layers/lstm/cell/vars"]
        del group["0"]
        group.create_dataset("0", shape=(10 ** 6, 10 ** 6), dtype="float32", chunks=(1, 16))
    assert bad.stat().st_size < 1_000_000
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"\(1000000, 1000000\)"):
        load_weights(ours[0], bad)
    assert time.perf_counter() - start < 2


def _npy_header_only(shape):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def test_huge_declared_shape_fails_fast_npz(ours, tmp_path):
    bad = tmp_path / "huge.unrolled.npz"
    with zipfile.ZipFile(ours[1][".unrolled.npz"]) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "layers/lstm/cell/vars/0.npy":
                data = _npy_header_only((10 ** 6, 10 ** 6))      # 10^12 elements declared
            zout.writestr(name, data)
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match="declares shape"):
        load_model(bad)
    assert time.perf_counter() - start < 2


def test_object_arrays_never_unpickled(ours, tmp_path):
    bad = tmp_path / "pickle.unrolled.npz"
    with zipfile.ZipFile(ours[1][".unrolled.npz"]) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "layers/dense/vars/0.npy":
                buf = io.BytesIO()
                np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
                data = buf.getvalue()
            zout.writestr(name, data)
    with pytest.raises(UnsafeModelError, match="pickle"):
        load_model(bad)


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil_abs.txt", "a/../../evil.txt"])
def test_escaping_zip_member_never_extracted(ours, tmp_path, member):
    work = tmp_path / "deep" / "dir"
    work.mkdir(parents=True)
    bad = work / "escape.keras"
    with zipfile.ZipFile(ours[1][".keras"]) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
        zout.writestr(member, b"owned")
    before = set(os.listdir(tmp_path)) | set(os.listdir(work.parent))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with pytest.raises(UnsafeModelError, match="outside the archive"):
            load_model(bad)
    finally:
        os.chdir(cwd)
    assert set(os.listdir(tmp_path)) | set(os.listdir(work.parent)) == before
    assert not os.path.exists("/tmp/evil_abs.txt")


def test_duplicate_member_and_zip_bomb(ours, tmp_path):
    dup = tmp_path / "dup.keras"
    with zipfile.ZipFile(ours[1][".keras"]) as zin, zipfile.ZipFile(dup, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
        with pytest.warns(UserWarning):
            zout.writestr("config.json", b"{}")
    with pytest.raises(UnsafeModelError, match="same name"):
        load_model(dup)
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(ours[1][".keras"]) as zin, \
            zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, data + b" " * 20_000_000 if name == "config.json" else data)
    with pytest.raises(ModelFileError, match="zip bomb|limit"):
        load_model(bomb)


@pytest.mark.parametrize("ext", [".keras", ".h5", ".unrolled.npz", ".weights.h5"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "missing"])
def test_broken_files_give_clear_errors(ours, tmp_path, ext, damage):
    model, paths = ours
    bad = tmp_path / f"bad{ext}"
    data = paths[ext].read_bytes()
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(4096))
    expected = FileNotFoundError if damage == "missing" else ModelFileError
    with pytest.raises(expected) as info:
        if ext == ".weights.h5":
            load_weights(model, bad)
        else:
            load_model(bad)
    assert str(bad.name) in str(info.value)
    assert isinstance(info.value, (ValueError, OSError))


def test_missing_member_named(ours, tmp_path):
    bad = tmp_path / "nomember.keras"
    with zipfile.ZipFile(ours[1][".keras"]) as zin, zipfile.ZipFile(bad, "w") as zout:
        zout.writestr("config.json", zin.read("config.json"))
    with pytest.raises(ModelFileError, match="no member 'model.weights.h5'"):
        load_model(bad)


def test_weights_of_another_model_refused(ours, tmp_path):
    other = Sequential([Input((5, 3)), LSTM(3), Dense(2)])
    with pytest.raises(ModelFileError, match="shape"):
        load_weights(other, ours[1][".weights.h5"])
    np.testing.assert_array_equal(other.layers[0].get_weights()[0].shape, (3, 12))
