"""One entry per recurrent cell type: what serialization, interop and explain need to know.

A cell type is registered once, here, with its cell class, its layer class, Keras's class
names and snake-case names, the options its config carries, its fused gate blocks (Keras's
order, and how PyTorch and ONNX order the same blocks) and the names of its states.
``io.serialize`` (Keras configs), ``interop.torch`` and ``interop.onnx_export``, and
``explain`` (trace, plots, code) read these entries instead of keeping tables of their own.
Each layer class gets, from its entry, a read-only attribute per cell option
(``LSTM(8).units`` is its cell's ``units``), as Keras's recurrent layers have.

Gate orders: a fused kernel ``(F, G*M)`` holds G blocks of M columns. ``torch_order[j]``
is the PyTorch block that Keras block j is; ``onnx_order[j]`` is the Keras block that
ONNX block j is.
"""
from dataclasses import dataclass, field

from .cells import SimpleRNN, SimpleRNNCell
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell
from .recurrent import CELL_RULES

_INITS = ("kernel_initializer", "recurrent_initializer", "bias_initializer")


@dataclass(frozen=True)
class CellType:
    cell: type                     # LSTMCell
    layer: type                    # LSTM: RNN(LSTMCell(...)) with the cell's arguments
    snake: str                     # Keras's snake-case name of the layer, "lstm"
    cell_snake: str                # ... and of the cell, "lstm_cell"
    options: tuple                 # the cell's config keys, in Keras's order
    blocks: int                    # gate blocks in the fused kernels
    gates: tuple = ()              # (name, description) of each gate block, for plots
    states: tuple = ("h",)         # the names of the states, in state_size's order
    fused_cache: dict = field(default_factory=dict)   # trace: cache entry -> its block names
    torch: str = None              # PyTorch's module name: "RNN", "LSTM", "GRU"
    torch_order: tuple = (0,)      # Keras block j = PyTorch block torch_order[j]
    onnx_order: tuple = (0,)       # ONNX block j = Keras block onnx_order[j]

    @property
    def name(self):
        """Keras's class name of the layer, "LSTM"."""
        return self.layer.__name__

    @property
    def cell_name(self):
        """Keras's class name of the cell, "LSTMCell"."""
        return self.cell.__name__


CELL_TYPES = [
    CellType(SimpleRNNCell, SimpleRNN, "simple_rnn", "simple_rnn_cell",
             ("units", "activation", "use_bias") + _INITS + ("dropout", "recurrent_dropout",
                                                             "seed"),
             blocks=1, torch="RNN"),
    CellType(LSTMCell, LSTM, "lstm", "lstm_cell",
             ("units", "activation", "recurrent_activation", "use_bias") + _INITS + (
                 "unit_forget_bias", "dropout", "recurrent_dropout", "seed"),
             blocks=4,
             gates=(("i", "input gate"), ("f", "forget gate"), ("g", "candidate g"),
                    ("o", "output gate")),
             states=("h", "c"),
             fused_cache={"z": ("zi", "zf", "zc", "zo")},
             torch="LSTM", torch_order=(0, 1, 2, 3),      # PyTorch i, f, g, o = Keras i, f, c, o
             onnx_order=(0, 3, 1, 2)),                    # ONNX i, o, f, c
    CellType(GRUCell, GRU, "gru", "gru_cell",
             ("units", "activation", "recurrent_activation", "use_bias") + _INITS + (
                 "dropout", "recurrent_dropout", "reset_after", "seed"),
             blocks=3,
             gates=(("z", "update gate z"), ("r", "reset gate r"), ("hh", "candidate hh")),
             torch="GRU", torch_order=(1, 0, 2),          # PyTorch r, z, n; Keras z, r, h
             onnx_order=(0, 1, 2)),                       # ONNX z, r, h
]

_BY_CELL = {t.cell_name: t for t in CELL_TYPES}
_BY_LAYER = {t.name: t for t in CELL_TYPES}
_BY_TORCH = {t.torch: t for t in CELL_TYPES if t.torch}
_HOOKS = []                     # what other modules add for each entry (``on_register``)
_UNHOOKS = []                   # ... and how they take it back


def register(entry):
    """Add a cell type (a ``CellType``): from then on its layer and cell are saved and
    loaded by name (``.keras``, legacy ``.h5``, ``.unrolled.npz``), their options are
    read on the layer, and explain traces it (docs/add-a-cell.md). Returns ``entry``."""
    if entry.cell_name in _BY_CELL or entry.name in _BY_LAYER:
        raise ValueError(f"A cell type named {entry.cell_name!r} or a layer named "
                         f"{entry.name!r} is already registered.")
    if entry.torch and entry.torch in _BY_TORCH:
        raise ValueError(f"PyTorch's {entry.torch!r} already maps to another cell type.")
    CELL_TYPES.append(entry)
    _BY_CELL[entry.cell_name], _BY_LAYER[entry.name] = entry, entry
    if entry.torch:
        _BY_TORCH[entry.torch] = entry
    _forward_options(entry)
    for hook in _HOOKS:
        hook(entry)
    return entry


def unregister(entry):
    """Undo ``register(entry)`` (a notebook that defines its cell again, a test)."""
    CELL_TYPES.remove(entry)
    for table, key in ((_BY_CELL, entry.cell_name), (_BY_LAYER, entry.name),
                       (_BY_TORCH, entry.torch)):
        if table.get(key) is entry:
            del table[key]
    for hook in _UNHOOKS:
        hook(entry)


def on_register(hook, undo=None):
    """Call ``hook(entry)`` for every cell type, registered now or later, and ``undo(entry)``
    when one is unregistered (serialization keeps its class table this way; the registry
    imports none of its readers)."""
    _HOOKS.append(hook)
    if undo is not None:
        _UNHOOKS.append(undo)
    for entry in CELL_TYPES:
        hook(entry)


def of_cell(cell):
    """The entry of a cell (an instance or a class name), or None for an unregistered cell
    (a StackedRNNCells, a user's cell)."""
    name = cell if isinstance(cell, str) else type(cell).__name__
    entry = _BY_CELL.get(name)
    if entry is not None and not isinstance(cell, str) and not isinstance(cell, entry.cell):
        return None                   # another class of the same name
    return entry


def of_layer(name):
    """The entry of a layer class name ("LSTM"), or None."""
    return _BY_LAYER.get(name)


def of_torch(name):
    """The entry of a PyTorch module name ("LSTM"; "RNN" is SimpleRNN's), or None."""
    return _BY_TORCH.get(name)


def of_kind(kind):
    """The entry for explain's kind of a recurrent layer: its cell's class name without
    "Cell" ("LSTM"), or None."""
    return _BY_CELL.get(kind + "Cell")


def _forward_options(entry):
    """``layer.<option>`` reads ``layer.cell.<option>`` for each of the entry's options."""
    for option in entry.options + CELL_RULES:
        if not hasattr(entry.layer, option):
            setattr(entry.layer, option, property(lambda self, o=option: getattr(self.cell, o),
                                                  doc=f"The cell's ``{option}``."))


for _entry in CELL_TYPES:
    _forward_options(_entry)
