"""The Layer contract: weights, shapes, and a forward pass with its backward beside it.

Every layer in ``unrolled`` implements two methods:

``forward(inputs, *, training=False, mask=None, initial_state=None) -> (outputs, cache)``
    computes the outputs and returns, next to them, whatever its backward pass needs.

``backward(cache, doutputs) -> (dinputs, dweights)``
    takes dLoss/d(outputs) (None where an output is unused) and returns dLoss/d(inputs),
    a list with one entry per input tensor (main inputs, then initial states), and
    dLoss/d(weights), a list aligned with ``layer.weights``.

Nothing else is needed for training: the model runs the forward passes in graph order,
then the backward passes in reverse order. There is no autograd engine.

Calling a layer (``layer(x)``) does one of two things, as in Keras: on arrays it computes
and returns arrays; on symbolic ``KerasTensor``s (from ``Input``) it records a node in
the functional graph and returns symbolic outputs.
"""
import functools
import re

import numpy as np

from .. import constraints as constraints_mod
from .. import regularizers as regularizers_mod
from ..config import standardize_dtype
from ..utils import to_list
from .activity import ActivityRegularized
from .masked_output import MaskedOutput
from .weights import HasWeights

_NAME_COUNTS = {}
# While a subclassed model's ``call`` runs, the ``CallTape.record`` that records each eager
# layer call (``models/call_tape.py``); None otherwise.
_call_hook = None


def _warn_mask_dropped(layer):
    import warnings
    warnings.warn(
        f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a "
        "mask attached to it. However, this layer does not support masking and will "
        "therefore destroy the mask information. Downstream layers will not see the mask.",
        stacklevel=4)


def _snake_case(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


def unique_name(base):
    """Keras's automatic names: ``dense``, ``dense_1``, ``dense_2``, ..."""
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def check_array(x, what, dtype):
    """``x`` as a float array of ``dtype``; a clear TypeError for strings and objects."""
    if isinstance(x, np.ndarray) and x.dtype == dtype:
        return x
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} must be numeric (a float array); received an array of dtype {arr.dtype}. "
            "Convert it with np.asarray(x, dtype='float32')."
        )
    return arr.astype(dtype, copy=False)


def _input_shape_argument(class_name, kwargs):
    """The batch input shape a layer's constructor arguments declare, or None: Keras 2's
    ``batch_input_shape``, ``input_shape`` with ``batch_size``, ``input_dim`` (with
    ``input_length`` on a recurrent layer). A Sequential model whose first layer declares
    one starts with that Input, as in Keras (Keras 3 keeps ``input_shape``/``input_dim``
    and warns; the rest is Keras 2's, which scripts of that era use). Pops them."""
    batch_shape = kwargs.pop("batch_input_shape", None)
    shape = kwargs.pop("input_shape", None)
    input_dim = kwargs.pop("input_dim", None)
    batch_size = kwargs.pop("batch_size", None)
    input_length = kwargs.pop("input_length", None)
    if batch_shape is None and shape is None and input_dim is not None:
        shape = (input_dim,) if input_length is None else (input_length, input_dim)
    if shape is not None or input_dim is not None:
        import warnings
        warnings.warn("Do not pass an `input_shape`/`input_dim` argument to a layer. When "
                      "using Sequential models, prefer using an `Input(shape)` object as the "
                      "first layer in the model instead.", stacklevel=3)
    if batch_shape is None and shape is not None:
        batch_shape = (batch_size,) + tuple(shape)
    if batch_shape is None:
        if batch_size is not None or input_length is not None:
            given = "batch_size" if batch_size is not None else "input_length"
            raise ValueError(f"{class_name}: `{given}` goes with `input_shape` or "
                             "`input_dim`; received it alone.")
        return None
    batch_shape = tuple(batch_shape)
    if not all(d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                             and d > 0) for d in batch_shape):
        raise ValueError(f"{class_name}: the input shape must hold positive integers or "
                         f"None; received {batch_shape}.")
    return tuple(None if d is None else int(d) for d in batch_shape)


class _Unbuilt:
    """A weight that ``build`` creates (``kernel``, ``recurrent_kernel``, ``bias``,
    ``embeddings``), looked up before ``build`` ran: ``forward``, ``step`` or ``backward``
    called directly on an unbuilt layer. It says so instead of a bare AttributeError deep in
    the math. ``build`` sets the real weight on the instance, which hides this class
    attribute, so a built layer's lookups cost nothing extra."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        if layer.__dict__.get("built", True) is False:
            raise AttributeError(
                f"Layer '{layer.name}' ({type(layer).__name__}) is not built yet, so it has "
                f"no '{self.name}': call it on an input first (layer(x)), or call "
                "layer.build(input_shape); forward, step and backward use the weights that "
                "build creates.")
        raise AttributeError(f"'{type(layer).__name__}' object has no attribute '{self.name}'")


def _builds_first(forward):
    """``forward`` that builds an unbuilt layer from its inputs before running, as calling
    the layer does (``layer.forward(x)`` on a new layer works as ``layer(x)`` would; a built
    layer pays one attribute test)."""
    if getattr(forward, "_builds_first", False):
        return forward

    @functools.wraps(forward)
    def building_forward(self, inputs, *args, **kwargs):
        if not self.built:
            inputs = self._prepare_eager(inputs)
        return forward(self, inputs, *args, **kwargs)
    building_forward._builds_first = True
    return building_forward


class Layer(HasWeights, ActivityRegularized):
    """Base class. Subclasses define ``build``, ``compute_output_shape``, ``forward``
    and ``backward``; ``input_ndim`` (exact) or ``min_ndim`` declare the accepted rank."""

    input_ndim = None
    min_ndim = None
    supports_masking = False
    # The weights that take Keras's ``<prefix>_regularizer`` and ``<prefix>_constraint``
    # arguments ("kernel", "recurrent" for the recurrent kernel, "bias", "embeddings"):
    # ``add_weight`` gives them to the weight of that name (``unrolled.regularizers``).
    weight_rules = ()
    kernel = _Unbuilt()                 # the weights build creates, until it does
    recurrent_kernel = _Unbuilt()
    bias = _Unbuilt()
    embeddings = _Unbuilt()

    def __init__(self, name=None, dtype=None, trainable=True, **kwargs):
        self._batch_input_shape = _input_shape_argument(type(self).__name__, kwargs)
        activity_regularizer = kwargs.pop("activity_regularizer", None)
        for prefix in self.weight_rules:
            setattr(self, f"{prefix}_regularizer",
                    regularizers_mod.get(kwargs.pop(f"{prefix}_regularizer", None)))
            setattr(self, f"{prefix}_constraint",
                    constraints_mod.get(kwargs.pop(f"{prefix}_constraint", None)))
        if kwargs:
            raise TypeError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self.dtype = standardize_dtype(dtype).name
        self._weights = []
        self._trainable = bool(trainable)   # as Keras: the constructor sets the flag alone
        self.built = False
        self._inbound_nodes = []
        self._feature_size = None
        self._penalties = []                 # activity penalties of the last pass (``losses``)
        self._collecting = False             # True while a model's step collects them all
        self._in_call = False
        self.activity_regularizer = activity_regularizer

    def __init_subclass__(cls, **kwargs):
        """A subclass written the Keras way (``call`` without ``forward``) gets the library's
        contract built from its ``call`` and ``backward`` (``layers/custom.py``). Classes
        that define ``forward`` (every built-in layer) keep it, made to build an unbuilt
        layer from its inputs first, as ``layer(x)`` does (``_builds_first``)."""
        super().__init_subclass__(**kwargs)
        is_model = any(c.__name__ == "Trainer" and c.__module__ == "unrolled.models.training"
                       for c in cls.__mro__)
        if "forward" in cls.__dict__ and not is_model:
            cls.forward = _builds_first(cls.__dict__["forward"])
        if "forward" in cls.__dict__ or is_model:
            return
        if "call" in cls.__dict__ or getattr(cls, "_keras_way", False):
            from . import custom
            custom.adapt(cls, Layer)

    # --- shapes --------------------------------------------------------------------------
    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, mask=None):
        """The mask of the outputs: passed through if the layer supports masking."""
        return mask if self.supports_masking else None

    def _check_input_shape(self, shape, index=0):
        """Raise a Keras-style ValueError when an input's rank or feature size is wrong."""
        shape = tuple(shape)
        if self.input_ndim is not None and len(shape) != self.input_ndim:
            raise ValueError(
                f"Input {index} of layer '{self.name}' is incompatible with the layer: "
                f"expected ndim={self.input_ndim}, found ndim={len(shape)}. Full shape "
                f"received: {shape}"
                + (". Recurrent layers take (batch, timesteps, features)." if self.input_ndim == 3 else "")
            )
        if self.min_ndim is not None and len(shape) < self.min_ndim:
            raise ValueError(
                f"Input {index} of layer '{self.name}' is incompatible with the layer: "
                f"expected min_ndim={self.min_ndim}, found ndim={len(shape)}. Full shape "
                f"received: {shape}"
            )
        if index == 0 and self._feature_size is not None and shape[-1] != self._feature_size:
            raise ValueError(
                f"Input {index} of layer '{self.name}' is incompatible with the layer: "
                f"expected axis -1 of input shape to have value {self._feature_size}, but "
                f"received input with shape {shape}"
            )

    def _check_initial_state_shapes(self, state_shapes, input_shape):
        raise TypeError(f"Layer '{self.name}' ({type(self).__name__}) takes no initial_state.")

    # --- the functional graph (Keras's ``layer.input``/``layer.output``) --------------------
    def _first_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"The layer {self.name} has never been called and thus has no "
                                 f"defined {what}.")
        return self._inbound_nodes[0]

    @property
    def input(self):
        """The symbolic input(s) of the layer's first call (Keras: node 0): one tensor, or a
        list. An InputLayer's input is its own tensor."""
        node = self._first_node("input")
        if not node.flat_inputs:                       # an InputLayer
            return node.outputs[0]
        return node.flat_inputs[0] if len(node.flat_inputs) == 1 else list(node.flat_inputs)

    @property
    def output(self):
        """The symbolic output(s) of the layer's first call: one tensor, or a list."""
        outputs = self._first_node("output").outputs
        return outputs[0] if len(outputs) == 1 else list(outputs)

    def _maybe_build(self, input_shape):
        if not self.built:
            self.build(input_shape)
            self.built = True

    # --- computation ---------------------------------------------------------------------
    def forward(self, inputs, *, training=False, mask=None, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward pass.")

    def backward(self, cache, doutputs):
        raise NotImplementedError(f"{type(self).__name__} has no backward pass.")

    # True for a layer whose ``backward`` also takes ``input_gradient=False``: then it skips
    # dLoss/d(inputs) (returning None in its place), which training does not need when the
    # inputs are the model's data. The recurrent layers save a product and a (B, T, F) array.
    optional_input_gradient = False

    def gradients(self, inputs, doutputs, training=False, mask=None, initial_state=None):
        """Backpropagate an upstream gradient through this layer alone.

        Runs ``forward`` on ``inputs`` and ``backward`` with ``doutputs`` (dLoss/d(outputs),
        shaped like the outputs) and returns ``(dinputs, dweights)``: a list with one array
        per input (initial states last) and a list in ``get_weights()`` order.
        """
        inputs = self._prepare_eager(inputs)
        kwargs = {} if initial_state is None else {"initial_state": initial_state}
        _, cache = self.forward(inputs, training=training, mask=mask, **kwargs)
        return self.backward(cache, doutputs)

    def call(self, inputs, training=False, mask=None, **kwargs):
        """The outputs alone (Keras's ``call``)."""
        return self.forward(inputs, training=training, mask=mask, **kwargs)[0]

    def __call__(self, inputs, *args, **kwargs):
        from .symbolic import KerasTensor, symbolic_call

        if args:
            raise TypeError(
                f"Layer '{self.name}' takes its inputs as one argument (an array or a list "
                "of arrays); pass initial_state=, mask= and training= by keyword."
            )
        flat = to_list(inputs) + to_list(kwargs.get("initial_state"))
        if any(isinstance(t, KerasTensor) for t in flat):
            return symbolic_call(self, inputs, kwargs)
        if _call_hook is not None:          # inside a subclassed model's call
            return _call_hook(self, inputs, kwargs)
        return self._eager_call(inputs, **kwargs)

    def _prepare_eager(self, inputs):
        if isinstance(inputs, (list, tuple)):
            arrays = [check_array(x, f"Input {i} of layer '{self.name}'", self.dtype)
                      for i, x in enumerate(inputs)]
            shapes = [a.shape for a in arrays]
            for i, s in enumerate(shapes):
                self._check_input_shape(s, i)
            self._maybe_build(shapes)
            return arrays
        x = check_array(inputs, f"Input 0 of layer '{self.name}'", self.dtype)
        self._check_input_shape(x.shape)
        self._maybe_build(x.shape)
        return x

    # Call arguments beyond inputs, training, mask and initial_state that the layer's forward
    # takes (``Attention``: return_attention_scores, use_causal_mask). A graph node keeps the
    # ones given and passes them to forward; a file's node config writes them.
    call_options = ()

    def _check_call_options(self, options):
        for key in options:
            if key not in self.call_options:
                raise TypeError(f"Layer '{self.name}' got an unexpected call argument {key!r}.")

    def _eager_call(self, inputs, training=False, mask=None, initial_state=None, **options):
        self._check_call_options(options)
        if mask is None and type(inputs) is MaskedOutput:    # a Keras-way layer's output
            inputs, mask = inputs.view(np.ndarray), inputs._keras_mask
            if not self.supports_masking:                    # Keras drops it, and warns
                _warn_mask_dropped(self)
                mask = None
        if mask is not None and not self.supports_masking:
            raise TypeError(
                f"Layer '{self.name}' ({type(self).__name__}) does not use a mask, but mask= was "
                "passed. Masks go to recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional) and "
                "to layers that pass them on (Dense, TimeDistributed, ...)."
            )
        inputs = self._prepare_eager(inputs)
        kwargs = {}
        if initial_state is not None:
            kwargs["initial_state"] = initial_state
        return self.call(inputs, training=bool(training), mask=mask, **kwargs, **options)

    # --- config --------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self.activity_regularizer is not None:            # Keras writes it when set
            rule = self.activity_regularizer
            known = type(rule) in regularizers_mod.CLASSES.values()
            config["activity_regularizer"] = regularizers_mod.serialize(rule) if known else rule
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
