"""``Model(inputs, outputs)``: a graph of layer calls, run forward and backward.

The graph is the list of ``Node``s between the inputs and the outputs, in an order where
every node comes after the nodes it reads from (``topology``). This module builds it and
plans its run (``_init_graph``, ``_plan_graph``), and gives the model's layers, weights and
ends as Keras does, with the hooks to the file formats (``save``, ``load_weights``,
``to_json``, pickling). Running it, forward, backward and ``predict``, is
``graph_run.GraphRunner``'s; training is ``training.Trainer``'s.
"""
from collections import Counter

from ..layers.base import Layer, unique_name
from ..layers.symbolic import InputLayer, KerasTensor
from ..utils import to_list
from . import summary as summary_mod
from .graph_run import GraphRunner
from .topology import keras_layer_order, walk
from .training import Trainer


class Model(Trainer, GraphRunner, Layer):
    """A functional model: ``Model(inputs, outputs)`` as in Keras.

    ``inputs`` are tensors from ``Input``, ``outputs`` tensors computed from them. The
    model is itself a layer: it has weights (those of its layers, in layer order),
    ``forward`` and ``backward``, and can be called on arrays.
    """

    def __init_subclass__(cls, **kwargs):
        """A subclass that defines ``call`` is a subclassed model (``models/subclassed.py``)."""
        super().__init_subclass__(**kwargs)
        if "call" in cls.__dict__ and not getattr(cls.__dict__["call"], "_subclassed_adapter",
                                                  False):
            from . import subclassed
            from .sequential import Sequential
            if issubclass(cls, Sequential):
                raise TypeError(f"{cls.__name__} overrides `call` of Sequential, which unrolled "
                                "does not run; subclass Model instead (layers in __init__, "
                                "your `call`).")
            subclassed.adapt(cls)

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        if getattr(type(self), "_user_call", None) is not None:      # a subclassed model
            from . import subclassed
            subclassed.init(self, inputs, outputs, name, kwargs)
            return
        Layer.__init__(self, name=name or unique_name("functional"), **kwargs)
        Trainer.__init__(self)
        if inputs is None or outputs is None:
            raise TypeError(
                "Model needs inputs and outputs: Model(inputs=Input(...), outputs=layer(...)). "
                "Use Sequential([...]) for a stack of layers, or subclass Model with layers "
                "in __init__ and a `call` (docs/custom-layers.md)."
            )
        self._init_graph(inputs, outputs)

    def _init_graph(self, inputs, outputs):
        self._multi_input = isinstance(inputs, (list, tuple))
        self._input_list = isinstance(inputs, (list, tuple))
        self._output_list = isinstance(outputs, (list, tuple))
        # One output in a list is one output: Keras unpacks it (unpack_singleton), and so
        # does a Keras 2 file, whose output_layers is always a list.
        self._multi_output = isinstance(outputs, (list, tuple)) and len(outputs) > 1
        self.inputs, self.outputs = to_list(inputs), to_list(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"Model inputs and outputs must be symbolic tensors from Input(...) and "
                    f"layer calls; received {type(t).__name__}."
                )
        for i, t in enumerate(self.inputs):
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model input {i} is not an Input(...) tensor: {t}.")
        nodes, first_visit = walk(self.outputs)
        input_nodes = {id(t.node) for t in self.inputs}
        for node in nodes:
            if isinstance(node.layer, InputLayer) and id(node) not in input_nodes:
                raise ValueError(
                    f"Graph disconnected: the output depends on Input '{node.layer.name}', "
                    "which is not among the model's inputs."
                )
        self._nodes = [n for n in nodes if not isinstance(n.layer, InputLayer)]
        self._layers = keras_layer_order(nodes, first_visit, self.inputs)
        names = Counter(layer.name for layer in self._layers)
        for name, count in names.items():  # files refer to layers by name: two are ambiguous
            if count != 1:
                raise ValueError(f'The name "{name}" is used {count} times in the model. All '
                                 "operation names should be unique.")
        self._plan_graph()
        self.built = True

    def _plan_graph(self):
        """The plan ``_run_graph`` follows: every tensor gets a slot in a list, and each node
        the slots of its inputs, states and outputs. A call then indexes lists instead of
        hashing tensor ids per node; integers also stay right when a model is copied."""
        slot = {id(t): i for i, t in enumerate(self.inputs)}
        n = len(self.inputs)
        plan = []
        for node in self._nodes:
            ins = [slot[id(t)] for t in to_list(node.inputs)]
            states = [slot[id(t)] for t in node.states]
            outs = []
            for t in node.outputs:
                slot[id(t)], n = n, n + 1
                outs.append(slot[id(t)])
            plan.append((node, ins, states, outs))
        self._plan = plan
        self._slots = n
        self._output_slots = [slot[id(t)] for t in self.outputs]

    # --- layers and weights -----------------------------------------------------------------
    @property
    def layers(self):
        return list(self._layers)

    def _summary_layers(self):
        return self.layers

    def get_layer(self, name=None, index=None):
        """A layer by ``name`` or by ``index`` in ``layers``, as ``keras.Model.get_layer``."""
        if index is not None and name is not None:
            raise ValueError("Provide only a layer name or a layer index. Received: "
                             f"index={index}, name={name}.")
        if index is not None:
            if len(self.layers) <= index:
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        if name is not None:
            for layer in self.layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: "
                             f"{[layer.name for layer in self.layers]}.")
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

    # --- the graph's ends, as Keras gives them: what the model was built from -----------------
    @property
    def input(self):
        return list(self.inputs) if self._input_list else self.inputs[0]

    @property
    def output(self):
        return list(self.outputs) if self._output_list else self.outputs[0]

    @property
    def input_shape(self):
        shapes = [tuple(t.shape) for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [tuple(t.shape) for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def weights(self):
        seen, out = set(), []
        for layer in self.layers:
            for w in layer.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    def _sublayers(self):
        return self.layers

    def set_weights(self, weights):
        weights = list(weights)
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(
                f"Model '{self.name}' has {len(own)} weight arrays, but set_weights received "
                f"{len(weights)}. Expected shapes, in order: {[w.shape for w in own]}."
            )
        Layer.set_weights(self, weights)

    def summary(self, print_fn=None):
        """Print Keras's summary table: layers, output shapes, parameter counts."""
        for line in summary_mod.summary_lines(self):
            (print_fn or print)(line)

    # --- saving --------------------------------------------------------------------------------
    def save(self, filepath):
        """Save config and weights: ``.keras`` (Keras 3), ``.h5`` (legacy) or ``.unrolled.npz``
        (NumPy only, no h5py), atomically."""
        from ..saving.model_files import save_model
        save_model(self, filepath)

    def save_weights(self, filepath):
        """Write the weights: ``.weights.h5`` (Keras 3 layout) or ``.weights.npz``/``.npz``
        (native), atomically."""
        from ..saving import model_files as saving
        saving.save_weights(self, filepath)

    def to_json(self, **kwargs):
        """The model's config as JSON text (Keras 3's form, as in a ``.keras`` file's
        ``config.json``), for ``unrolled.models.model_from_json`` or Keras's; ``kwargs`` go
        to ``json.dumps``."""
        import json
        from ..saving.graph import model_config
        return json.dumps(model_config(self), **kwargs)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """Load ``.weights.h5``, a legacy ``.h5``, a ``.keras`` archive's weights or
        ``.weights.npz``, as Keras 3 does: a legacy ``.h5`` by layer order, or by layer
        name with ``by_name=True``; ``skip_mismatch=True`` leaves what does not fit, with a
        warning. Counts and shapes are checked before anything is assigned."""
        from ..saving import model_files as saving
        by_name = kwargs.pop("by_name", None)
        objects_to_skip = kwargs.pop("objects_to_skip", None)
        if kwargs:
            raise ValueError(f"Invalid keyword arguments: {kwargs}")
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch, by_name=by_name,
                            objects_to_skip=objects_to_skip)

    def get_config(self):
        return {"name": self.name}

    def __reduce__(self):
        """``pickle`` and ``copy.deepcopy``: the model through unrolled's own format, as
        Keras 3 pickles through a ``.keras`` archive (``models/pickling.py``)."""
        from .pickling import reduce_model
        return reduce_model(self)
