"""Layers with Keras's names and arguments (``keras.layers``)."""
from .base import Layer
from .core import Activation, Dense, Flatten
from .embedding import Embedding, Masking
from .dot import Dot, dot
from .merge import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                    average, concatenate, maximum, minimum, multiply, subtract)
from .recurrent import (GRU, LSTM, RNN, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell,
                        StackedRNNCells)
from .reshaping import Dropout, Permute, RepeatVector, Reshape
from .symbolic import Input, InputLayer, KerasTensor
from .wrappers import Bidirectional, TimeDistributed
from . import (activation_layers, attention, convolutional, multi_head_attention, noise,
               normalization, pooling)
from .activation_layers import *  # noqa: F401,F403  (each module's __all__)
from .attention import *  # noqa: F401,F403
from .convolutional import *  # noqa: F401,F403
from .multi_head_attention import *  # noqa: F401,F403
from .noise import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from . import registry  # noqa: E402,F401  (the cell registry gives the layers their options)

__all__ = [
    "Activation", "Add", "Bidirectional", "Concatenate", "Dense", "Dropout", "Embedding",
    "Flatten", "GRU", "GRUCell", "Input", "InputLayer", "KerasTensor", "Layer", "LSTM",
    "LSTMCell", "Masking", "RepeatVector", "Reshape", "RNN", "SimpleRNN", "SimpleRNNCell",
    "StackedRNNCells", "TimeDistributed", "add", "concatenate", "Multiply", "Average",
    "Subtract", "Maximum", "Minimum", "multiply", "average", "subtract", "maximum", "minimum",
    "Dot", "dot", "Permute",
]
# The layers beside the recurrent ones (issue 25), one module per family, each with its
# ``__all__`` and its ``KERAS_LAYERS`` table (which saving/serialize.py reads).
COMPANION_MODULES = (activation_layers, attention, convolutional, multi_head_attention, noise,
                     normalization, pooling)
for _module in COMPANION_MODULES:
    __all__ += _module.__all__
