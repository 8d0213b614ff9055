"""Recurrent layers: one time loop and the cells whose steps it runs.

``loop.py``      ``RNN``: time, masks, ``go_backwards``, states, ``stateful``, the hook to
                 the fast path; ``bptt.py`` its backward pass, ``states.py`` its states,
                 ``dropout.py`` the dropout masks, ``inputs.py`` the time-major inputs
``cells.py``     the cell contract (``Cell``), ``SimpleRNNCell`` and ``SimpleRNN``
``lstm.py``, ``gru.py``   ``LSTMCell``/``LSTM``, ``GRUCell``/``GRU``
``stacked.py``   ``StackedRNNCells``
``custom_cells.py``  cells written the Keras way (``call``), run by the same loop
``gates.py``     the fused gate products the cells share

The cells are the reference, plain NumPy; ``unrolled.fast`` holds what is there only for
speed, and this package never imports it at module level.
"""
from .cells import Cell, SimpleRNN, SimpleRNNCell
from .gru import GRU, GRUCell
from .loop import CELL_RULES, RNN
from .lstm import LSTM, LSTMCell
from .stacked import StackedRNNCells

__all__ = ["CELL_RULES", "Cell", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "SimpleRNN",
           "SimpleRNNCell", "StackedRNNCells"]
