"""One entry per recurrent cell type: what serialization, interop and explain need to know.

A cell type is registered once, here, with its cell class, its layer class, Keras's class
names and snake-case names, the options its config carries, its fused gate blocks (Keras's
order, and how PyTorch and ONNX order the same blocks), the names of its states, and the
text explain shows: its equations and the NumPy lines of one step.
``saving.serialize`` (Keras configs), ``interop.torch`` and ``interop.onnx_export``, and
``explain`` (trace, equations, plots, code) read these entries instead of keeping tables
of their own. Each layer class gets, from its entry, a read-only attribute per cell option
(``LSTM(8).units`` is its cell's ``units``), as Keras's recurrent layers have.

Gate orders: a fused kernel ``(F, G*M)`` holds G blocks of M columns. ``torch_order[j]``
is the PyTorch block that Keras block j is; ``onnx_order[j]`` is the Keras block that
ONNX block j is.

Explain's text (``equations``, ``step_code``) is a template per line, filled per cell:
``{option}`` is the cell's value of that option (an activation gives its name),
``{cols[k]}`` the columns of gate block k as a slice (``":8"``, ``"8:16"``, ``"16:"``), and
for a cell without bias every `` + bias...`` term is dropped (``+ bias``, ``+ bias_i``,
``+ bias[0]``). A cell whose lines change with an option (GRU's ``reset_after``) gives a
function of the cell that returns them. In the equations (``explain.equations``), a name is
a value of the cell's trace (``x_t`` the input, ``h_prev`` a state before the step, the
names of the cell's cache), a weight (``kernel``; ``kernel_i`` its block named ``i`` in
``subscripts``; ``bias[0]`` a row), or an activation called on something; ``A @ W`` is
evaluated for the units shown. In the step code (``explain.to_numpy_code``), the step's input
is ``x[:, t]``, the states and weights go by their names, and the output is the first state.
"""
import re
import string
from dataclasses import dataclass, field

from ..activations import Activation
from .recurrent import (CELL_RULES, GRU, LSTM, GRUCell, LSTMCell, SimpleRNN,
                        SimpleRNNCell)

_INITS = ("kernel_initializer", "recurrent_initializer", "bias_initializer")
_NO_BIAS = re.compile(r" \+ bias(?:\[\d+\])?(?:_[A-Za-z0-9]+)?(?![\w\[])")


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
    # explain (the module docstring gives the templates' rules); None: not explained
    equations: object = None       # ((lhs, formula), ...), or cell -> that
    step_code: object = None       # (line, ...) of one step of NumPy, or cell -> that
    subscripts: str = ""           # the name of each gate block in the equations ("ifco")
    symbols: dict = field(default_factory=dict)       # LaTeX of the equations' own names
    code_options: tuple = ()       # options the code's docstring names when not the default

    @property
    def name(self):
        """Keras's class name of the layer, "LSTM"."""
        return self.layer.__name__

    @property
    def cell_name(self):
        """Keras's class name of the cell, "LSTMCell"."""
        return self.cell.__name__

    def equations_of(self, cell):
        """``[(lhs, formula), ...]``: this cell's equations, the templates filled."""
        lines = self.equations(cell) if callable(self.equations) else self.equations
        return [(lhs, self._fill(formula, cell, "equations")[0]) for lhs, formula in lines]

    def step_code_of(self, cell):
        """``(lines, activations)``: one step of NumPy for ``cell`` and the names of the
        activations it calls, in the order of the options that hold them."""
        lines = self.step_code(cell) if callable(self.step_code) else self.step_code
        filled = [self._fill(line, cell, "step_code") for line in lines]
        used = {o for _, fields in filled for o in fields}
        acts = [getattr(cell, o).name for o in self.options
                if o in used and isinstance(getattr(cell, o), Activation)]
        return [text for text, _ in filled], acts

    def _fill(self, template, cell, what):
        fields = {name.split("[")[0].split(".")[0]
                  for _, name, _, _ in string.Formatter().parse(template) if name}
        values = {}
        for name in fields:
            if name == "cols":
                m, g = cell.units, self.blocks
                values[name] = [f"{k * m if k else ''}:{(k + 1) * m if k < g - 1 else ''}"
                                for k in range(g)]
            elif name in self.options:
                value = getattr(cell, name)
                values[name] = value.name if isinstance(value, Activation) else value
            else:
                raise ValueError(f"The {what} of cell type {self.name} name {{{name}}}, "
                                 f"which is neither one of its options {self.options} "
                                 "nor {cols[k]}.")
        try:
            text = template.format(**values)
        except (IndexError, ValueError) as err:
            raise ValueError(f"The {what} of cell type {self.name}: cannot fill "
                             f"{template!r} ({err}).") from None
        if getattr(cell, "bias", None) is None:
            text = _NO_BIAS.sub("", text)
        return text, fields


# --- the built-in cells' equations and step code (explain) ---------------------------------
_SIMPLE_RNN_EQUATIONS = (("a", "x_t @ kernel + h_prev @ recurrent_kernel + bias"),
                         ("h", "{activation}(a)"))
_SIMPLE_RNN_CODE = ("h = {activation}(x[:, t] @ kernel + h @ recurrent_kernel + bias)",)

_LSTM_EQUATIONS = (("zi", "x_t @ kernel_i + h_prev @ recurrent_kernel_i + bias_i"),
                   ("zf", "x_t @ kernel_f + h_prev @ recurrent_kernel_f + bias_f"),
                   ("zc", "x_t @ kernel_c + h_prev @ recurrent_kernel_c + bias_c"),
                   ("zo", "x_t @ kernel_o + h_prev @ recurrent_kernel_o + bias_o"),
                   ("i", "{recurrent_activation}(zi)"), ("f", "{recurrent_activation}(zf)"),
                   ("g", "{activation}(zc)"), ("o", "{recurrent_activation}(zo)"),
                   ("c", "f * c_prev + i * g"), ("tc", "{activation}(c)"), ("h", "o * tc"))
_LSTM_CODE = ("z = x[:, t] @ kernel + h @ recurrent_kernel + bias   # the four gates at once",
              "zi, zf, zc, zo = np.split(z, 4, axis=1)",
              "i = {recurrent_activation}(zi)                    # input gate",
              "f = {recurrent_activation}(zf)                    # forget gate",
              "g = {activation}(zc)                    # candidate cell value",
              "o = {recurrent_activation}(zo)                    # output gate",
              "c = f * c + i * g",
              "h = o * {activation}(c)")

_GRU_EQUATIONS = {   # by reset_after: r multiplies h_prev @ U_h + b_h (Keras 3), or h_prev
    True: (("az", "x_t @ kernel_z + h_prev @ recurrent_kernel_z + bias[0]_z + bias[1]_z"),
           ("ar", "x_t @ kernel_r + h_prev @ recurrent_kernel_r + bias[0]_r + bias[1]_r"),
           ("z", "{recurrent_activation}(az)"), ("r", "{recurrent_activation}(ar)"),
           ("rh", "h_prev @ recurrent_kernel_h + bias[1]_h"),
           ("ah", "x_t @ kernel_h + bias[0]_h + r * rh"),
           ("hh", "{activation}(ah)"), ("h", "z * h_prev + (1 - z) * hh")),
    False: (("az", "x_t @ kernel_z + h_prev @ recurrent_kernel_z + bias_z"),
            ("ar", "x_t @ kernel_r + h_prev @ recurrent_kernel_r + bias_r"),
            ("z", "{recurrent_activation}(az)"), ("r", "{recurrent_activation}(ar)"),
            ("ah", "x_t @ kernel_h + (r * h_prev) @ recurrent_kernel_h + bias_h"),
            ("hh", "{activation}(ah)"), ("h", "z * h_prev + (1 - z) * hh"))}
_GRU_CODE = {
    True: ("xz, xr, xh = np.split(x[:, t] @ kernel + bias[0], 3, axis=1)",
           "rz, rr, rh = np.split(h @ recurrent_kernel + bias[1], 3, axis=1)",
           "z = {recurrent_activation}(xz + rz)                # update gate",
           "r = {recurrent_activation}(xr + rr)                # reset gate",
           "hh = {activation}(xh + r * rh)              # candidate, reset after the product",
           "h = z * h + (1 - z) * hh"),
    False: ("xz, xr, xh = np.split(x[:, t] @ kernel + bias, 3, axis=1)",
            "z = {recurrent_activation}(xz + h @ recurrent_kernel[:, {cols[0]}])        # update gate",
            "r = {recurrent_activation}(xr + h @ recurrent_kernel[:, {cols[1]}])  # reset gate",
            "hh = {activation}(xh + (r * h) @ recurrent_kernel[:, {cols[2]}])  # reset before the product",
            "h = z * h + (1 - z) * hh")}


CELL_TYPES = [
    CellType(SimpleRNNCell, SimpleRNN, "simple_rnn", "simple_rnn_cell",
             ("units", "activation", "use_bias") + _INITS + ("dropout", "recurrent_dropout",
                                                             "seed"),
             blocks=1, torch="RNN",
             equations=_SIMPLE_RNN_EQUATIONS, step_code=_SIMPLE_RNN_CODE),
    CellType(LSTMCell, LSTM, "lstm", "lstm_cell",
             ("units", "activation", "recurrent_activation", "use_bias") + _INITS + (
                 "unit_forget_bias", "dropout", "recurrent_dropout", "seed"),
             blocks=4,
             gates=(("i", "input gate"), ("f", "forget gate"), ("g", "candidate g"),
                    ("o", "output gate")),
             states=("h", "c"),
             fused_cache={"z": ("zi", "zf", "zc", "zo")},
             torch="LSTM", torch_order=(0, 1, 2, 3),      # PyTorch i, f, g, o = Keras i, f, c, o
             onnx_order=(0, 3, 1, 2),                     # ONNX i, o, f, c
             equations=_LSTM_EQUATIONS, step_code=_LSTM_CODE, subscripts="ifco",
             symbols={"zi": "z_i", "zf": "z_f", "zc": "z_c", "zo": "z_o", "tc": r"\tanh(c)"}),
    CellType(GRUCell, GRU, "gru", "gru_cell",
             ("units", "activation", "recurrent_activation", "use_bias") + _INITS + (
                 "dropout", "recurrent_dropout", "reset_after", "seed"),
             blocks=3,
             gates=(("z", "update gate z"), ("r", "reset gate r"), ("hh", "candidate hh")),
             torch="GRU", torch_order=(1, 0, 2),          # PyTorch r, z, n; Keras z, r, h
             onnx_order=(0, 1, 2),                        # ONNX z, r, h
             equations=lambda cell: _GRU_EQUATIONS[bool(cell.reset_after)],
             step_code=lambda cell: _GRU_CODE[bool(cell.reset_after)], subscripts="zrh",
             symbols={"hh": r"\tilde{h}", "az": "a_z", "ar": "a_r", "ah": "a_h", "rh": "r_h"},
             code_options=("reset_after",)),
]

_BY_CELL = {t.cell_name: t for t in CELL_TYPES}
_BY_LAYER = {t.name: t for t in CELL_TYPES}
_BY_TORCH = {t.torch: t for t in CELL_TYPES if t.torch}
_HOOKS = []                     # what other modules add for each entry (``on_register``)
_UNHOOKS = []                   # ... and how they take it back


def register(entry):
    """Add a cell type (a ``CellType``): from then on its layer and cell are saved and
    loaded by name (``.keras``, legacy ``.h5``, ``.unrolled.npz``), their options are
    read on the layer, explain traces it, and, with ``equations`` and ``step_code``, shows
    its equations and writes its NumPy code (docs/add-a-cell.md). Returns ``entry``."""
    if entry.subscripts and len(entry.subscripts) != entry.blocks:
        raise ValueError(f"Cell type {entry.name}: subscripts={entry.subscripts!r} names "
                         f"{len(entry.subscripts)} gate blocks; it has blocks={entry.blocks}.")
    for what in ("equations", "step_code"):
        text = getattr(entry, what)
        if not (text is None or callable(text) or isinstance(text, tuple)):
            raise TypeError(f"Cell type {entry.name}: {what} must be a tuple, a function of "
                            f"the cell or None; received {type(text).__name__}.")
    for option in entry.code_options:
        if option not in entry.options:
            raise ValueError(f"Cell type {entry.name}: code_options names {option!r}, which "
                             f"is not one of its options {entry.options}.")
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
