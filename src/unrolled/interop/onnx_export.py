"""``to_onnx(model, path)``: an unrolled model as an ONNX graph that onnxruntime runs.

Recurrent layers become ONNX's own ``RNN``, ``LSTM`` and ``GRU`` operators, fed time-major
input (``Transpose`` 0↔1). The weight table, per direction (ONNX stacks directions in a
leading axis; ``W``, ``R``, ``B`` are the operator's inputs)::

    ONNX input            from Keras                                   gate blocks (ONNX order)
    W (G*H, F)            kernel.T                                     RNN: h
    R (G*H, H)            recurrent_kernel.T                           LSTM: i, o, f, c  (Keras i, f, c, o)
    B (2*G*H,)            [Wb, Rb]: RNN/LSTM [bias, 0]                 GRU: z, r, h      (as Keras)
                          GRU reset_after=True  [bias[0], bias[1]]     linear_before_reset=1
                          GRU reset_after=False [bias, 0]              linear_before_reset=0

Outputs: ``Y (T, D, B, H)`` is aligned with the input's time axis in both directions, so
``go_backwards`` with ``return_sequences`` reverses it (Keras returns processing order);
without ``return_sequences`` the last state ``Y_h (D, B, H)`` is the output. Bidirectional
runs one ``direction="bidirectional"`` operator and merges the direction axis (concat,
sum, ave, mul). Dense is ``Gemm`` on 2-D input and ``MatMul`` + ``Add`` otherwise; Embedding
is ``Gather``. Masks, ``return_state``, ``initial_state``, stateful layers and stacked
cells are refused with an error naming the layer. ``onnx`` is imported inside ``to_onnx``.
The other layers (convolution, pooling, normalization, activation layers, attention, ...) and
the activations are in ``onnx_layers.py``.
"""
import numpy as np

from ..io.atomic import atomic_write
from ..layers import registry
from ..utils import to_list
from .gates import GATES, ONNX_GATE_ORDER
from .gates import reorder_blocks as _blocks
from .onnx_layers import SUPPORTED as _LAYER_FORMS
from .onnx_layers import activation as _activation
from .onnx_layers import emit as _emit_layer
from .onnx_layers import refuse as _refuse
ONNX_ACT = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "hard_sigmoid": "HardSigmoid",
            "hard_sigmoid_keras2": "HardSigmoid"}
# ONNX's HardSigmoid is clip(alpha x + beta, 0, 1): Keras 3's slope is 1/6, Keras 2's 0.2.
HARD_SIGMOID_ALPHA = {"hard_sigmoid": 1.0 / 6.0, "hard_sigmoid_keras2": 0.2}
OPSET = 17


class _Graph:
    """The nodes and constants being collected, with fresh value names."""

    def __init__(self, helper, numpy_helper, opset=None):
        self.h, self.nh, self.opset = helper, numpy_helper, OPSET if opset is None else opset
        self.nodes, self.inits, self.count = [], [], 0

    def fresh(self, base):
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, array, base="const"):
        name = self.fresh(base)
        self.inits.append(self.nh.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(self.h.make_node(op_type, inputs, outs, **attrs))
        return outs if n_out > 1 else outs[0]


def _direction_weights(kind, cell, weights):
    """W, R, B of one direction in ONNX layout and gate order."""
    order = ONNX_GATE_ORDER[kind]
    W = _blocks(weights[0].T, kind, order)                  # (G*H, F)
    R = _blocks(weights[1].T, kind, order)                  # (G*H, H)
    assert W.shape == (GATES[kind] * cell.units, weights[0].shape[0]) and R.shape[1] == cell.units
    if not cell.use_bias:
        return W, R, np.zeros(2 * W.shape[0], np.float32)
    bias = weights[2]
    if kind == "GRU" and cell.reset_after:
        wb, rb = _blocks(bias[0], kind, order), _blocks(bias[1], kind, order)
    else:
        wb, rb = _blocks(bias, kind, order), np.zeros_like(bias)
    return W, R, np.concatenate([wb, rb])


def _recurrent_kind(layer):
    if getattr(layer, "return_state", False) or getattr(layer, "stateful", False):
        _refuse(layer, "return_state and stateful have no ONNX form here")
    entry = registry.of_cell(layer.cell)
    kind = entry and entry.torch
    if kind is None:
        _refuse(layer, f"its cell is a {type(layer.cell).__name__}; only SimpleRNN, LSTM and "
                       "GRU cells map to ONNX operators")
    return kind


def _acts(kind, cell):
    """The unrolled names of the activations an ONNX recurrent op lists, in its order."""
    if kind == "RNN":
        names = [cell.activation.name]
    else:
        names = [cell.recurrent_activation.name, cell.activation.name]
        names += [cell.activation.name] if kind == "LSTM" else []
    for n in names:
        if n not in ONNX_ACT:
            raise ValueError(f"to_onnx: activation {n!r} has no ONNX recurrent form.")
    return names


def _merge(g, y, axis, mode, layer):
    """Merge the direction axis ``axis`` (size 2) of ``y`` as Bidirectional's merge_mode."""
    if mode == "concat":
        return g.op("Reshape", [y, g.const(np.array([0] * axis + [-1], np.int64))])
    a, b = (g.op("Gather", [y, g.const(np.array(i, np.int64))], axis=axis) for i in (0, 1))
    if mode == "sum":
        return g.op("Add", [a, b])
    if mode == "ave":
        return g.op("Mul", [g.op("Add", [a, b]), g.const(np.array(0.5, np.float32))])
    if mode == "mul":
        return g.op("Mul", [a, b])
    _refuse(layer, "merge_mode=None gives two outputs")


def _recurrent(g, layer, x):
    bidi = type(layer).__name__ == "Bidirectional"
    subs = [layer.forward_layer, layer.backward_layer] if bidi else [layer]
    kinds = [_recurrent_kind(s) for s in subs]
    cell = subs[0].cell
    if bidi and (kinds[0] != kinds[1] or subs[1].cell.units != cell.units
                 or subs[1].cell.use_bias != cell.use_bias
                 or getattr(subs[1].cell, "reset_after", None) != getattr(cell, "reset_after", None)):
        _refuse(layer, "its two directions differ in kind, units, bias or reset_after")
    kind = kinds[0]
    parts = [_direction_weights(kind, s.cell, s.get_weights()) for s in subs]
    W, R, B = (np.stack([p[i] for p in parts]).astype(np.float32) for i in range(3))
    names = sum((_acts(kind, s.cell) for s in subs), [])
    attrs = {"hidden_size": cell.units, "activations": [ONNX_ACT[n] for n in names],
             "direction": "bidirectional" if bidi else ("reverse" if layer.go_backwards else "forward")}
    if kind == "GRU":
        attrs["linear_before_reset"] = int(cell.reset_after)
    alphas = {HARD_SIGMOID_ALPHA[n] for n in names if n in HARD_SIGMOID_ALPHA}
    if len(alphas) > 1:
        _refuse(layer, "it mixes Keras 2's and Keras 3's hard_sigmoid in one recurrent op")
    if alphas:    # onnxruntime hands the list's values to the activations that take them, one
        # by one; the spec can be read as one per listed activation: one value suits both.
        attrs["activation_alpha"] = [alphas.pop()] * len(names)
        attrs["activation_beta"] = [0.5] * len(names)
    xt = g.op("Transpose", [x], perm=[1, 0, 2])              # (T, B, F): ONNX is time-major
    n_out = 3 if kind == "LSTM" else 2
    outs = g.op(kind, [xt, g.const(W, "W"), g.const(R, "R"), g.const(B, "B")], n_out=n_out, **attrs)
    y, y_h = outs[0], outs[1]
    if layer.return_sequences:
        y = g.op("Transpose", [y], perm=[2, 0, 1, 3])         # (B, T, D, H)
        if bidi:
            return _merge(g, y, 2, layer.merge_mode, layer)
        y = g.op("Squeeze", [y, g.const(np.array([2], np.int64))])
        if layer.go_backwards:                               # Keras: processing order
            y = g.op("Slice", [y, *(g.const(np.array([v], np.int64)) for v in (-1, -2 ** 62, 1, -1))])
        return y
    if bidi:
        return _merge(g, g.op("Transpose", [y_h], perm=[1, 0, 2]), 1, layer.merge_mode, layer)
    return g.op("Squeeze", [y_h, g.const(np.array([0], np.int64))])


def _dense(g, layer, x, rank):
    w = layer.get_weights()
    if rank == 2:
        ins = [x, g.const(w[0], "kernel")] + ([g.const(w[1], "bias")] if layer.use_bias else [])
        y = g.op("Gemm", ins)
    else:
        y = g.op("MatMul", [x, g.const(w[0], "kernel")])
        if layer.use_bias:
            y = g.op("Add", [y, g.const(w[1], "bias")])
    return _activation(g, layer.activation.name, y)


def _emit(g, node, ins, shapes):
    layer = node.layer
    name = type(layer).__name__
    ranks = [len(s) for s in shapes]
    if node.states:
        _refuse(layer, "initial_state inputs are not exported")
    if layer.dtype != "float32":
        _refuse(layer, f"dtype {layer.dtype}; ONNX export is float32")
    if node.kwargs.get("training"):
        _refuse(layer, "it was called with training=True; the export is inference")
    x = ins[0]
    y = _emit_layer(g, node, ins, shapes)          # onnx_layers.py: the companion layers
    if y is not None:
        return y
    if name == "TimeDistributed":
        if type(layer.layer).__name__ != "Dense":
            _refuse(layer, "only TimeDistributed(Dense) is exported")
        return _dense(g, layer.layer, x, ranks[0])
    if name == "Dense":
        return _dense(g, layer, x, ranks[0])
    if name == "Activation":
        return _activation(g, layer.activation.name, x) if layer.activation.name != "linear" \
            else g.op("Identity", [x])
    if name == "Flatten":
        return g.op("Flatten", [x], axis=1)
    if name == "Embedding":
        if layer.mask_zero:
            _refuse(layer, "mask_zero=True makes a mask, and masks are not exported")
        return g.op("Gather", [g.const(layer.get_weights()[0], "embeddings"),
                               g.op("Cast", [x], to=7)])        # ids as int64
    if name == "RepeatVector":
        x1 = g.op("Unsqueeze", [x, g.const(np.array([1], np.int64))])
        return g.op("Tile", [x1, g.const(np.array([1, layer.n, 1], np.int64))])
    if name == "Reshape":
        return g.op("Reshape", [x, g.const(np.array([0] + list(layer.target_shape), np.int64))])
    if name == "Concatenate":
        return g.op("Concat", ins, axis=layer.axis)
    if name == "Add":
        if len(set(ranks)) != 1:
            _refuse(layer, "inputs of different ranks broadcast differently in ONNX")
        y = ins[0]
        for other in ins[1:]:
            y = g.op("Add", [y, other])
        return y
    if hasattr(layer, "cell") or name == "Bidirectional":
        return _recurrent(g, layer, x)
    _refuse(layer, "no ONNX form (supported: SimpleRNN, LSTM, GRU, RNN(cell), Bidirectional, "
                   "Dense, TimeDistributed(Dense), Embedding, Activation, Flatten, RepeatVector, "
                   f"Reshape, Concatenate, Add, {', '.join(_LAYER_FORMS)})")


def _value_info(helper, TensorProto, name, shape, dtype):
    elem = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32,
            "int64": TensorProto.INT64}.get(str(dtype), TensorProto.FLOAT)
    dims = ["batch"] + [d if d is not None else f"{name}_d{i}" for i, d in enumerate(shape[1:], 1)]
    return helper.make_tensor_value_info(name, elem, dims)


def to_onnx(model, path, opset=OPSET):
    """Write ``model`` to ``path`` as ONNX; returns the ``onnx.ModelProto``."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError("to_onnx needs the onnx package: pip install 'unrolled[onnx]'.") from None
    if not isinstance(opset, int) or opset < 13:
        raise ValueError(f"to_onnx: opset {opset!r} is not supported; use 13 or later (Softmax "
                         "along one axis, Squeeze's axes as an input).")
    g = _Graph(helper, numpy_helper, opset)
    names = {}
    graph_inputs = []
    for t in model.inputs:
        names[id(t)] = t.node.layer.name
        graph_inputs.append(_value_info(helper, TensorProto, names[id(t)], t.shape, t.dtype))
    for node in model._nodes:
        if node.multi_output:
            _refuse(node.layer, "it has several outputs")
        ins = to_list(node.inputs)
        out = _emit(g, node, [names[id(t)] for t in ins], [t.shape for t in ins])
        names[id(node.outputs[0])] = out
    graph_outputs = []
    for k, t in enumerate(model.outputs):
        name = f"output_{k}"
        g.nodes.append(helper.make_node("Identity", [names[id(t)]], [name]))
        graph_outputs.append(_value_info(helper, TensorProto, name, t.shape, "float32"))
    graph = helper.make_graph(g.nodes, model.name, graph_inputs, graph_outputs, g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="unrolled")
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return proto
