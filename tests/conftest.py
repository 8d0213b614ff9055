"""Shared test setup: Keras runs on the TensorFlow backend, quietly, on the CPU."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import importlib.abc
import importlib.util
import sys
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


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def varied(rng, *shape, scale=0.5):
    """Weights that differ from entry to entry, so that layout and gate-order mistakes show."""
    return (rng.standard_normal(shape) * scale).astype("float32")


def pytest_configure(config):
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
