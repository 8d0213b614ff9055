"""unrolled: recurrent neural networks in plain NumPy, step by step, numbers as Keras's.

``import unrolled`` needs NumPy alone; h5py, matplotlib, onnx, torch and pandas are
imported only by the functions that use them.
"""
__version__ = "0.1.0"

from . import activations, config, initializers, layers, models, utils  # noqa: F401
