"""HDF5 files are parsed in a child process with a time limit (``unrolled.io.h5_sandbox``)."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from unrolled.interop.commands import _raw_arrays
from unrolled.io import h5_sandbox, safety
from unrolled.io.h5_sandbox import H5Dataset, H5Group, h5_timeout, open_h5, worker_pid
from unrolled.io.safety import ModelFileError, UnsafeModelError, read_attr, read_dataset
from unrolled.layers import LSTM, Dense, Input
from unrolled.models import Sequential, load_model, save_model
from unrolled.saving.model_files import load_weights, save_weights

# A legacy .h5 of Sequential([Input((2,)), Dense(1)]) with bytes 16-31 of its global heap
# collection ("GCOL") zeroed: the first heap object has index 0 and size 0, and reading the
# model_config attribute, a variable-length string, makes the HDF5 library loop forever
# (holding the GIL). Found by tests/unit/io/test_fuzz.py.
HANGING = Path(__file__).parents[2] / "data" / "hanging_global_heap.h5"


@pytest.fixture
def files(tmp_path):
    model = Sequential([Input((5, 3)), LSTM(4), Dense(2)])
    paths = {ext: tmp_path / f"m{ext}" for ext in (".keras", ".h5")}
    for path in paths.values():
        save_model(model, path)
    save_weights(model, tmp_path / "m.weights.h5")
    paths[".weights.h5"] = tmp_path / "m.weights.h5"
    return model, paths


def _same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)


def test_hanging_file_times_out_then_a_new_worker_loads(files, monkeypatch):
    model, paths = files
    monkeypatch.setenv("UNROLLED_H5_TIMEOUT", "1.5")
    load_model(paths[".h5"])
    first = worker_pid()
    for load in (load_model, lambda p: load_weights(model, p)):
        start = time.perf_counter()
        with pytest.raises(ModelFileError, match=r"parsing took longer than 1\.5 s, and was "
                                                 r"stopped .*UNROLLED_H5_TIMEOUT"):
            load(HANGING)
        assert time.perf_counter() - start < 8
        assert worker_pid() is None
    _same_weights(load_model(paths[".h5"]), model)
    assert worker_pid() not in (None, first)


def test_worker_is_reused(files):
    model, paths = files
    load_model(paths[".keras"])
    pid = worker_pid()
    assert pid is not None and pid != os.getpid()
    _same_weights(load_model(paths[".h5"]), model)
    load_weights(model, paths[".weights.h5"])
    assert worker_pid() == pid


def test_killed_worker_is_restarted(files):
    model, paths = files
    load_model(paths[".h5"])
    pid = worker_pid()
    os.kill(pid, signal.SIGKILL)
    h5_sandbox._worker.proc.wait(10)
    _same_weights(load_model(paths[".keras"]), model)
    assert worker_pid() not in (None, pid)


def test_worker_dying_mid_parse_is_a_model_file_error(files, monkeypatch):
    model, paths = files
    monkeypatch.setenv("UNROLLED_H5_TIMEOUT", "60")
    load_model(paths[".h5"])
    pid = worker_pid()
    killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
    killer.start()
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"process ended \(exit status -9\)"):
        load_model(HANGING)
    killer.join()
    assert time.perf_counter() - start < 10
    _same_weights(load_model(paths[".h5"]), model)
    assert worker_pid() not in (None, pid)


def test_an_alarm_interrupts_the_wait(files, monkeypatch):
    """The parent waits without the GIL, so a signal handler runs (the fuzz test's alarm)."""
    model, paths = files
    monkeypatch.setenv("UNROLLED_H5_TIMEOUT", "60")

    class Alarm(Exception):
        pass

    def alarm(*_):
        raise Alarm
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(1)
    start = time.perf_counter()
    try:
        with pytest.raises(Alarm):
            load_model(HANGING)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - start < 10
    assert worker_pid() is None                 # stopped mid-request: the next load starts anew
    _same_weights(load_model(paths[".h5"]), model)


def test_child_errors_keep_their_class(files, tmp_path):
    _, paths = files
    linked = tmp_path / "linked.h5"
    linked.write_bytes(paths[".h5"].read_bytes())
    with h5py.File(linked, "r+") as f:
        f["model_weights/sneaky"] = h5py.ExternalLink(str(paths[".weights.h5"]), "/")
    with pytest.raises(UnsafeModelError, match="ExternalLink at '/model_weights/sneaky'"):
        open_h5(linked.read_bytes(), linked)
    truncated = paths[".h5"].read_bytes()[:3000]
    with pytest.raises(ModelFileError, match="'x.h5' is not a readable HDF5 file") as info:
        open_h5(truncated, "x.h5")
    assert type(info.value) is ModelFileError
    with pytest.raises(ModelFileError, match="is not an HDF5 file"):
        open_h5(b"PK\x03\x04 a zip", "x.h5")


def test_attribute_errors_wait_until_the_attribute_is_read(files, tmp_path, monkeypatch):
    model, paths = files
    junk = tmp_path / "junk.h5"
    junk.write_bytes(paths[".h5"].read_bytes())
    with h5py.File(junk, "r+") as f:
        f.attrs["junk"] = np.zeros(3000, "int8")
    monkeypatch.setattr(safety, "MAX_ATTR_ITEMS", 2000)    # the limits travel to the child
    _same_weights(load_model(junk), model)                  # never asks for "junk"
    with open_h5(junk.read_bytes(), junk) as f:
        assert "junk" in f.attrs and read_attr(f, "missing", 7) == 7
        with pytest.raises(ModelFileError, match="'junk' declares 3000 entries"):
            read_attr(f, "junk")
        with pytest.raises(ModelFileError, match="'junk' declares"):
            f.attrs.get("junk")
    monkeypatch.setattr(safety, "MAX_ATTR_ITEMS", 1)
    with pytest.raises(ModelFileError, match="'layer_names' declares 2 entries"):
        load_model(paths[".h5"])


def _rich_file(path):
    with h5py.File(path, "w") as f:
        f.attrs["str"] = "héllo"
        f.attrs["fixed"] = np.bytes_(b"ab\xffc")
        f.attrs["names"] = np.array([b"lstm", b"dense_1"])
        f.attrs["vlen_str"] = np.array(["a", "bé"], dtype=h5py.string_dtype())
        f.attrs["vlen_bytes"] = np.array([b"a", b"bb"], dtype=h5py.string_dtype("ascii"))
        f.attrs["empty_names"] = np.array([], "S1")
        f.attrs["int"] = 3
        f.attrs["flag"] = True
        f.attrs["floats"] = np.arange(6, dtype="float16").reshape(2, 3)
        f.attrs["nothing"] = h5py.Empty("f4")
        f.attrs["pair"] = np.array((1, 2.0), dtype=[("a", "i4"), ("b", "f8")])
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "dense"
        g.create_dataset("0", data=np.arange(12, dtype=">f4").reshape(3, 4))
        g.create_dataset("1", data=np.arange(5, dtype="int16"), compression="gzip")
        g["0"].attrs["unit"] = "m"
        f.create_dataset("scalar", data=2.5)
        f.create_dataset("text", data=["x", "y"], dtype=h5py.string_dtype())
        f.create_group("empty")
    return path.read_bytes()


def test_snapshot_matches_h5py(tmp_path):
    data = _rich_file(tmp_path / "rich.h5")
    unsupported = {"nothing", "pair"}
    with h5py.File(tmp_path / "rich.h5", "r") as ref, open_h5(data, tmp_path / "rich.h5") as f:
        assert isinstance(f, H5Group) and sorted(f.attrs) == sorted(ref.attrs)
        for name in set(ref.attrs) - unsupported:
            ours, theirs = f.attrs[name], ref.attrs[name]
            assert type(ours) is type(theirs), name
            if isinstance(theirs, np.ndarray):
                assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, name
                assert ours.tolist() == theirs.tolist(), name
            else:
                assert ours == theirs, name
        for name in unsupported:
            with pytest.raises(ModelFileError, match=f"attribute '{name}'"):
                f.attrs[name]

        seen, theirs = [], []
        f.visititems(lambda n, o: seen.append((n, type(o).__name__)))
        ref.visititems(lambda n, o: theirs.append((n, type(o).__name__.replace("Group", "H5Group")
                                                   .replace("Dataset", "H5Dataset"))))
        assert seen == theirs
        assert f.visititems(lambda n, o: n if n.endswith("vars") else None) == "layers/dense/vars"

        assert list(f.keys()) == list(ref.keys()) and len(f["empty"].keys()) == 0
        vars_ = f.get("layers/dense/vars")
        assert isinstance(vars_, H5Group) and vars_.attrs["name"] == "dense"
        assert f["layers"]["dense/vars"] is vars_
        assert vars_.get("/layers/dense") is f["layers/dense"]
        assert "layers/dense/vars/1" in f and "layers/nope" not in f and f.get("nope") is None
        assert f.get("scalar/x") is None
        with pytest.raises(KeyError):
            f["nope"]
        for name in ("layers/dense/vars/0", "layers/dense/vars/1", "scalar"):
            ds, rd = f[name], ref[name]
            assert isinstance(ds, H5Dataset)
            assert (ds.shape, ds.dtype, ds.compression) == (rd.shape, rd.dtype, rd.compression)
            np.testing.assert_array_equal(ds[()], rd[()])
            assert type(ds[()]) is type(rd[()])
            np.testing.assert_array_equal(read_dataset(ds, rd.shape, name, "rich.h5", len(data)),
                                          rd[()])
        assert f["layers/dense/vars/0"].attrs["unit"] == "m"
        with pytest.raises(ModelFileError, match="'text' has dtype object; expected numbers"):
            read_dataset(f["text"], None, "text", "rich.h5", len(data))
        with pytest.raises(ModelFileError, match=r"has shape \(3, 4\), but the model expects"):
            read_dataset(f["layers/dense/vars/0"], (4, 3), "w", "rich.h5", len(data))
    with pytest.raises(ValueError, match="closed"):
        f["scalar"][()]


def test_inspect_reads_every_array(files):
    _, paths = files
    expected = []
    with h5py.File(paths[".weights.h5"], "r") as f:
        f.visititems(lambda n, o: expected.append((n, o[()]))
                     if isinstance(o, h5py.Dataset) else None)
    arrays = _raw_arrays(str(paths[".weights.h5"]))
    assert [n for n, _ in arrays] == [n for n, _ in expected] and len(arrays) == 5
    for (_, ours), (_, theirs) in zip(arrays, expected):
        np.testing.assert_array_equal(ours, theirs)


def test_huge_declared_dataset_is_not_read(tmp_path):
    path = tmp_path / "huge.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("big", shape=(10 ** 6, 10 ** 6), dtype="float32", chunks=(1, 16))
        f.create_dataset("ok", data=np.ones(3))
    with open_h5(path.read_bytes(), path) as f:
        assert f["big"].shape == (10 ** 6, 10 ** 6)
        with pytest.raises(OSError, match="size checks"):
            f["big"][()]
        with pytest.raises(ModelFileError, match=r"declares shape \(1000000, 1000000\)"):
            read_dataset(f["big"], None, "big", path, path.stat().st_size)
        np.testing.assert_array_equal(f["ok"][()], np.ones(3))


def test_datasets_read_in_all_stay_within_what_the_file_can_hold(tmp_path):
    """Each compressed dataset may inflate 200x, but not all of them together."""
    path = tmp_path / "zeros.h5"
    with h5py.File(path, "w") as f:
        for name in "abcd":
            f.create_dataset(name, data=np.zeros(2 ** 19), compression="gzip")   # 4 MiB each
    size = path.stat().st_size
    assert 4 * 2 ** 22 > safety.dataset_limit(size, True) > 2 ** 22
    with open_h5(path.read_bytes(), path) as f:
        np.testing.assert_array_equal(f["a"][()], np.zeros(2 ** 19))
        with pytest.raises(ModelFileError, match="more data in all than the file can"):
            read_dataset(f["d"], None, "d", path, size)


def test_timeout_default_and_override(monkeypatch):
    monkeypatch.delenv("UNROLLED_H5_TIMEOUT", raising=False)
    assert h5_timeout(0) == 10 and h5_timeout(20_000_000) == 11
    monkeypatch.setattr(h5_sandbox, "H5_TIMEOUT", 4)
    assert h5_timeout(10 ** 9) == 4
    monkeypatch.setenv("UNROLLED_H5_TIMEOUT", "0.5")
    assert h5_timeout(10 ** 9) == 0.5
    monkeypatch.setenv("UNROLLED_H5_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="UNROLLED_H5_TIMEOUT"):
        h5_timeout(0)


def test_missing_h5py_named_before_any_process_starts(files, monkeypatch):
    _, paths = files
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install 'unrolled\[h5\]'"):
        load_model(paths[".h5"])


def test_the_reading_process_never_imports_h5py(files):
    _, paths = files
    code = textwrap.dedent("""
        import sys
        import unrolled
        from unrolled.io import h5_sandbox
        from unrolled.models import load_model
        assert h5_sandbox.worker_pid() is None and "h5py" not in sys.modules
        for path in sys.argv[1:]:
            load_model(path)
        assert h5_sandbox.worker_pid() is not None and "h5py" not in sys.modules
        print("OK")
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(paths[".h5"]), str(paths[".keras"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_the_worker_ends_when_its_parent_is_killed_during_a_hanging_parse(tmp_path):
    """A process killed while its worker loops in the HDF5 library (holding the GIL) must not
    leave the worker spinning: on Linux the kernel ends it with its parent."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, threading, time
        os.environ["UNROLLED_H5_TIMEOUT"] = "600"
        from unrolled.io import h5_sandbox
        from unrolled.models import load_model
        def report():
            while h5_sandbox.worker_pid() is None:
                time.sleep(0.05)
            print(h5_sandbox.worker_pid(), flush=True)
        threading.Thread(target=report, daemon=True).start()
        load_model({str(HANGING)!r})
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    time.sleep(1.0)                                   # the worker is inside the hanging parse
    assert _alive(worker)
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while _alive(worker) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid):
    """True while ``pid`` runs (a zombie waiting to be reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def test_no_time_limit_and_bad_limits(files, monkeypatch):
    model, paths = files
    monkeypatch.setenv("UNROLLED_H5_TIMEOUT", "inf")
    assert h5_timeout(10) == float("inf")
    _same_weights(load_model(paths[".h5"]), model)
    for bad in ("0", "-3", "nan", "soon"):
        monkeypatch.setenv("UNROLLED_H5_TIMEOUT", bad)
        with pytest.raises(ValueError, match="positive number of seconds, or inf"):
            load_model(paths[".h5"])


def test_a_frozen_or_embedded_python_parses_in_process_with_a_warning(files, monkeypatch):
    model, paths = files
    assert h5_sandbox.can_start_worker()
    monkeypatch.setattr(sys, "executable", "/opt/someapp/bin/someapp")
    assert not h5_sandbox.can_start_worker()
    monkeypatch.setattr(sys, "executable", sys.__dict__.get("_base_executable", "") or "")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert not h5_sandbox.can_start_worker()
    monkeypatch.setattr(h5_sandbox, "_warned_in_process", False)
    h5_sandbox._stop_worker()
    with pytest.warns(RuntimeWarning, match="cannot start the HDF5 parsing process"):
        loaded = load_model(paths[".keras"])
    _same_weights(loaded, model)
    _same_weights(load_model(paths[".h5"]), model)             # (warned once)
    assert worker_pid() is None                                 # no worker was started
    with pytest.raises(ModelFileError):
        open_h5(b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "broken.h5")
