"""Symbolic tensors and graph nodes: what ``Input`` and a layer called on it return.

``Input(shape=(T, D))`` returns a ``KerasTensor``, a placeholder with a shape (batch
``None``) and no values. Calling a layer on it records a ``Node`` — which layer, which
tensors went in, which came out — and returns new KerasTensors. ``Model(inputs,
outputs)`` walks these nodes back from the outputs to find the graph it runs.
"""
import numpy as np

from ..utils import to_list
from .base import Layer


class KerasTensor:
    """A symbolic tensor: a shape with ``None`` for the batch, a dtype, and the node that made it."""

    def __init__(self, shape, dtype, node=None, index=0, name=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *a, **k):
        raise TypeError(
            "A symbolic KerasTensor (from Input) has no values. Build a Model(inputs, outputs) "
            "and call model.predict(x) on real data."
        )


class Node:
    """One call of a layer in the functional graph.

    ``inputs`` are the main inputs (one KerasTensor or a list), ``states`` the
    ``initial_state`` tensors, ``outputs`` the KerasTensors it produced. ``flat_inputs``
    is ``to_list(inputs) + states``: the order in which ``backward`` returns gradients.
    """

    def __init__(self, layer, inputs, states, outputs, kwargs):
        self.layer = layer
        self.inputs = inputs
        self.states = states
        self.outputs = outputs
        self.kwargs = kwargs
        self.flat_inputs = to_list(inputs) + list(states)
        self.list_input = isinstance(inputs, list)

    @property
    def parents(self):
        return [t.node for t in self.flat_inputs]


def _is_shape_list(shape):
    return isinstance(shape, list) or (isinstance(shape, tuple) and shape and isinstance(shape[0], (tuple, list)))


def symbolic_call(layer, inputs, kwargs):
    """Record ``layer(inputs, **kwargs)`` in the graph and return symbolic outputs."""
    options = {k: v for k, v in kwargs.items() if k not in ("initial_state", "training", "mask")}
    layer._check_call_options(options)           # e.g. Attention's return_attention_scores
    if kwargs.get("mask") is not None:
        raise TypeError(
            f"Layer '{layer.name}': in the functional API masks travel with the tensors "
            "(from Masking or Embedding(mask_zero=True)); pass mask= only in eager calls."
        )
    main = inputs
    for i, t in enumerate(to_list(main)):
        if not isinstance(t, KerasTensor):
            raise TypeError(
                f"Layer '{layer.name}' was called on a mix of symbolic tensors and arrays "
                f"(input {i} is {type(t).__name__}). In the functional API every input must "
                "come from Input(...) or another layer."
            )
    states = to_list(kwargs.get("initial_state"))
    if isinstance(main, (list, tuple)):
        shapes = [t.shape for t in main]
        for i, s in enumerate(shapes):
            layer._check_input_shape(s, i)
        main = list(main)
    else:
        shapes = main.shape
        layer._check_input_shape(shapes)
    layer._maybe_build(shapes)
    if states:
        layer._check_initial_state_shapes([s.shape for s in states], shapes)
    out_shapes = layer.compute_output_shape(shapes, **options) if options else \
        layer.compute_output_shape(shapes)
    multi = _is_shape_list(out_shapes)
    node = Node(layer, main, states, [], {"training": kwargs.get("training"), **options})
    outs = [KerasTensor(s, layer.dtype, node, i, f"{layer.name}_{i}")
            for i, s in enumerate(out_shapes if multi else [out_shapes])]
    node.outputs = outs
    node.multi_output = multi
    layer._inbound_nodes.append(node)
    return list(outs) if multi else outs[0]


class InputLayer(Layer):
    """The graph's entry point. It has no weights; ``Model.layers[0]`` is one."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
        super().__init__(name=name)
        if dtype is not None:                    # integer inputs (token ids) are allowed here
            self.dtype = np.dtype(dtype).name
        if batch_shape is None:
            if shape is None:
                raise ValueError("Input needs a shape, e.g. Input(shape=(timesteps, features)).")
            shape = tuple(to_list(shape)) if not isinstance(shape, int) else (shape,)
            batch_shape = (batch_size,) + shape
        batch_shape = tuple(batch_shape)
        for d in batch_shape[1:]:
            if d is not None and (not isinstance(d, int) or d <= 0):
                raise ValueError(
                    f"Input shape must hold positive integers or None; received {batch_shape[1:]}."
                )
        self.batch_shape = batch_shape
        self.built = True
        node = Node(self, [], [], [], {})
        node.multi_output = False
        node.outputs = [KerasTensor(batch_shape, self.dtype, node, 0, self.name)]
        self._inbound_nodes.append(node)          # ``output`` (Layer's) is that tensor

    def compute_output_shape(self, input_shape):
        return self.batch_shape

    def get_config(self):
        return {"batch_shape": self.batch_shape, "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None):
    """A symbolic input of the given shape (without the batch axis), as ``keras.Input``."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name,
                       batch_shape=batch_shape)
    return layer.output
