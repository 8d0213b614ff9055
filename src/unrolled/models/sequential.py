"""``Sequential([...])``: a plain stack of layers, each feeding the next."""
from ..layers.base import Layer, unique_name
from ..layers.symbolic import Input, InputLayer, KerasTensor
from .functional import Model
from .training import Trainer


class Sequential(Model):
    """A stack of layers. ``Sequential([Input((T, D)), SimpleRNN(5), Dense(2)])``.

    It is a functional model built as soon as the input shape is known: from an ``Input``
    first in the list, or from the first array it is called on. ``layers`` excludes the
    InputLayer, as in Keras.
    """

    def __init__(self, layers=None, name=None, **kwargs):
        Layer.__init__(self, name=name or unique_name("sequential"), **kwargs)
        Trainer.__init__(self)
        self._stack = []
        self._input = None
        self.built = False
        self._nodes, self._layers = [], []
        for layer in layers or []:                  # built once, as Keras: a model read
            self.add(layer, rebuild=False)          # from a file may be thousands deep
        if self._input is not None and self._stack:
            self._build_graph(self._input)

    def add(self, layer, rebuild=True):
        """Append a layer (or an ``Input`` tensor, which fixes the input shape);
        ``rebuild=False`` (Keras's) leaves the graph to be built later."""
        if isinstance(layer, KerasTensor) and isinstance(layer.node.layer, InputLayer):
            if self._stack or self._input is not None:
                raise ValueError("An Input can only be the first element of a Sequential model.")
            self._input = layer
            return
        if isinstance(layer, InputLayer):
            self._input = layer.output
            return
        if (isinstance(layer, Layer) and not self._stack and self._input is None
                and getattr(layer, "_batch_input_shape", None) is not None):
            # Keras's legacy case: the first layer's input_shape (batch_input_shape,
            # input_dim, an Embedding's input_length) is the model's Input.
            dtype = "int32" if type(layer).__name__ == "Embedding" else layer.dtype
            self._input = Input(batch_shape=layer._batch_input_shape, dtype=dtype)
        if not isinstance(layer, Layer):
            raise TypeError(
                f"Sequential only accepts layers; received {layer!r} of type {type(layer).__name__}."
            )
        if any(other.name == layer.name for other in self._stack):
            raise ValueError(
                "All layers added to a Sequential model should have unique names. Name "
                f"'{layer.name}' is already the name of a layer in this model. Update the "
                "`name` argument to pass a unique name.")
        self._stack.append(layer)
        self.built = False
        if rebuild and self._input is not None:
            self._build_graph(self._input)

    def pop(self, rebuild=True):
        layer = self._stack.pop()
        if rebuild and self._input is not None and self._stack:
            self._build_graph(self._input)
        return layer

    def _build_graph(self, input_tensor):
        t = input_tensor
        for layer in self._stack:
            t = layer(t)
        self._init_graph(input_tensor, t)

    def build(self, input_shape):
        if self._input is None:
            self._input = Input(batch_shape=(None,) + tuple(input_shape[1:]))
        self._build_graph(self._input)

    def _ensure_built(self, x):
        if not self.built:
            import numpy as np
            shape = np.shape(x)
            if len(shape) < 2:
                raise ValueError(
                    f"Sequential model '{self.name}' got input of shape {shape}; expected "
                    "(batch, ...) with at least 2 dimensions."
                )
            self.build(shape)

    @property
    def layers(self):
        return list(self._stack)

    def _standardize_inputs(self, x):
        if not self.built:
            if not self._stack:
                raise ValueError(f"Sequential model '{self.name}' has no layers.")
            self._ensure_built(x)
        return super()._standardize_inputs(x)

    def _graph_end(self, what):
        if not self.built:
            raise AttributeError(f"Sequential model '{self.name}' has no defined {what} yet: "
                                 "start it with an Input, or call it on data first.")
        return getattr(Model, what).fget(self)

    input = property(lambda self: self._graph_end("input"))
    output = property(lambda self: self._graph_end("output"))
    input_shape = property(lambda self: self._graph_end("input_shape"))
    output_shape = property(lambda self: self._graph_end("output_shape"))

    def summary(self, print_fn=None):
        if not self.built:                  # Keras's "(unbuilt)" table, shapes unknown yet
            from .summary import unbuilt_lines
            for line in unbuilt_lines(self, self._stack):
                (print_fn or print)(line)
            return
        super().summary(print_fn)
