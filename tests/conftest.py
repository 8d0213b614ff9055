"""Shared test setup: Keras runs on the TensorFlow backend, quietly, on the CPU."""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def varied(rng, *shape, scale=0.5):
    """Weights that differ from entry to entry, so that layout and gate-order mistakes show."""
    return (rng.standard_normal(shape) * scale).astype("float32")
