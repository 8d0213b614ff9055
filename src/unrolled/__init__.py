"""unrolled: recurrent neural networks in plain NumPy, step by step, numbers as Keras's.

``import unrolled`` needs NumPy alone; h5py, matplotlib, onnx, torch and pandas are
imported only by the functions that use them.

The common Keras names are here too, so that ``import unrolled as keras`` runs scripts
written for Keras: ``Input``, ``Model``, ``Sequential`` and the modules ``layers``,
``models``, ``optimizers``, ``losses``, ``metrics``, ``callbacks``, ``initializers``,
``regularizers``, ``constraints``, ``activations``, ``utils``, ``backend``
(``clear_session``, ``floatx``, ``epsilon``...), ``random`` (NumPy generators with Keras's
signatures), ``saving`` (files, the registry of user classes, object configs) and
``datasets`` (present, but loading none: unrolled downloads nothing). A Keras name
unrolled does not have raises an AttributeError that says so.
"""
import importlib.util as _util

from .version import __version__  # noqa: F401

from . import (activations, callbacks, config, constraints, initializers, layers,  # noqa: F401
               losses, metrics, models, optimizers, regularizers, utils)
from . import backend, datasets, random, saving  # noqa: F401  (unrolled.random, not the stdlib's)
from .layers import Input  # noqa: F401
from .models import Model, Sequential  # noqa: F401

_KERAS_NAMES = "Input, Model, Sequential, layers, models, optimizers, losses, metrics, " \
               "callbacks, initializers, regularizers, constraints, activations, utils, " \
               "backend, random, saving, datasets (which loads nothing: no network)"


def __getattr__(name):
    """Subpackages on first use (``unrolled.explain``, ``unrolled.interop``); for any other
    name, an AttributeError that says what unrolled has instead."""
    if not name.startswith("_") and _util.find_spec(f"{__name__}.{name}") is not None:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(
        f"module 'unrolled' has no attribute '{name}'. unrolled offers Keras's {_KERAS_NAMES}; "
        f"'{name}' is not among them (see README, \"Coming from Keras\").")
