"""Layers with Keras's names and arguments (``keras.layers``)."""
from .base import Layer
from .cells import SimpleRNNCell
from .core import Activation, Dense, Flatten
from .recurrent import RNN, SimpleRNN
from .symbolic import Input, InputLayer, KerasTensor

__all__ = [
    "Activation", "Dense", "Flatten", "Input", "InputLayer", "KerasTensor", "Layer", "RNN",
    "SimpleRNN", "SimpleRNNCell",
]
