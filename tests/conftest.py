"""Shared test setup: Keras runs on the TensorFlow backend, quietly, on the CPU."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import importlib.abc
import importlib.util
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np
import pytest


class _KerasRunsEagerly(importlib.abc.MetaPathFinder):
    """Run Keras's reference computations eagerly (``make test``; ``make test-all`` keeps
    Keras's default graph mode: ``UNROLLED_TEST_KERAS_GRAPH=1``).

    Keras's ``fit``/``predict`` trace a ``tf.function`` per model, 1-3 s each, for a few
    steps of tiny models; eagerly, TensorFlow runs the same Keras train step op by op and
    the suite's Keras tests take about half the time. The numbers are Keras's either way
    (tests hold them to float32 tolerances, not bits). The switch is made the moment
    TensorFlow is imported, so tests that never use Keras never import it."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.config.run_functions_eagerly(True)

        spec.loader.exec_module = exec_module
        return spec


if os.environ.get("UNROLLED_TEST_KERAS_GRAPH") != "1" and "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _KerasRunsEagerly())


class _NumPyAlone(importlib.abc.MetaPathFinder):
    """``make test-unit`` (``UNROLLED_TEST_NUMPY_ALONE=1``): tests/unit/ must pass where the
    reference frameworks are not installed, so importing one fails as it would there."""

    FRAMEWORKS = {"tensorflow", "keras", "tf_keras", "torch", "onnx", "onnxruntime", "jax"}

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.FRAMEWORKS:
            raise ModuleNotFoundError(f"No module named {name!r} (make test-unit runs the "
                                      "unit tests with NumPy alone)", name=name)
        return None


if os.environ.get("UNROLLED_TEST_NUMPY_ALONE") == "1":
    sys.meta_path.insert(0, _NumPyAlone())


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def shared():
    """One module's reference runs that several of its tests assert on, keyed by their
    inputs (``if key not in shared: shared[key] = run()``). The first test that needs a key
    runs Keras; the others read what it computed (with pytest-xdist, each worker that runs
    some of them computes a key once). What is kept must not be changed by a test: models
    are saved or called, never trained."""
    return {}


def varied(rng, *shape, scale=0.5):
    """Weights that differ from entry to entry, so that layout and gate-order mistakes show."""
    return (rng.standard_normal(shape) * scale).astype("float32")


_WARMING = "UNROLLED_TEST_WARMING"     # the folder where the warm-up processes say they ended


def _start_warming(config):
    """Compile the fast kernels once per run, before the workers need them.

    With pytest-xdist each worker would compile the same kernels at its first call (a fresh
    clone has an empty numba cache): the controller starts ``unrolled.fast.warm`` in one
    process per core, each compiling a share, while the workers import and collect; each
    worker waits for them before its first test (``pytest_runtestloop``). With a warm cache
    they end in about a second. Warming is best effort: a share that fails still says it
    ended, and its kernels compile at their first call, as without warming."""
    try:
        workers = int(getattr(config.option, "numprocesses", None) or 0)
    except (TypeError, ValueError):
        workers = 2
    if (not workers or hasattr(config, "workerinput") or _WARMING in os.environ
            or os.environ.get("UNROLLED_COMPILED") == "0"
            or importlib.util.find_spec("numba") is None):
        return
    shares = max(1, min(workers, os.cpu_count() or 1))
    folder = tempfile.mkdtemp(prefix="unrolled-warm-")
    os.environ[_WARMING] = f"{shares}:{folder}"            # the workers inherit it
    code = ("import sys\ntry:\n    from unrolled.fast import warm\n"
            "    warm.main(['--part', sys.argv[1]])\n"
            "finally:\n    open(sys.argv[2], 'w').close()\n")
    config._unrolled_warming = [
        subprocess.Popen([sys.executable, "-c", code, f"{i}/{shares}",
                          os.path.join(folder, f"done-{i}")])
        for i in range(shares)]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """A worker waits (at most 5 minutes) for the warm-up to end before its first test."""
    if not hasattr(session.config, "workerinput") or _WARMING not in os.environ:
        return
    shares, folder = os.environ[_WARMING].split(":", 1)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if len([f for f in os.listdir(folder) if f.startswith("done-")]) >= int(shares):
            return
        time.sleep(0.2)


def pytest_unconfigure(config):
    for proc in getattr(config, "_unrolled_warming", ()):
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if getattr(config, "_unrolled_warming", None):
        import shutil
        shutil.rmtree(os.environ.pop(_WARMING).split(":", 1)[1], ignore_errors=True)


def pytest_configure(config):
    _start_warming(config)
    config.addinivalue_line(
        "markers", "sampled(keep): a property test with many cases; make test runs the fixed "
        "share `keep` of them (chosen by a hash of the test id: the same cases on every run "
        "and machine), make test-all (UNROLLED_TEST_ALL=1) runs them all")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("UNROLLED_TEST_ALL") == "1":
        return
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("sampled")
        if marker is None:
            kept.append(item)
            continue
        keep = marker.args[0]
        share = zlib.crc32(item.nodeid.encode()) / 2 ** 32
        (kept if share < keep else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
