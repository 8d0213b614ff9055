"""``Model(inputs, outputs)``: a graph of layer calls, run forward and backward.

The graph is the list of ``Node``s between the inputs and the outputs, in an order where
every node comes after the nodes it reads from. ``forward`` runs them in that order and
keeps each layer's cache on a *tape*; ``backward`` walks the tape in reverse, handing
each layer dLoss/d(its outputs) and summing what it returns into dLoss/d(its inputs).
"""
from collections import Counter

import numpy as np

from ..fast.threads import limit as blas_threads
from ..layers.base import Layer, check_array, unique_name
from ..layers.symbolic import InputLayer, KerasTensor
from ..progbar import Progbar
from ..utils import to_list
from . import summary as summary_mod
from .training import Trainer


def _warn_mask_dropped(layer):
    """Keras's behaviour: a layer that cannot use a mask drops it, with a warning."""
    import warnings
    warnings.warn(
        f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a "
        "mask attached to it, but it does not support masking: the mask stops here and "
        "downstream layers will not see it.", stacklevel=3)


def _walk(outputs):
    """Depth-first walk back from the outputs (in order), parents in call-argument order.

    Returns the nodes, each after all of its parents, and the walk's first-visit index of
    every layer (a shared layer keeps the index of its first node reached)."""
    order, state, first_visit = [], {}, {}
    for t in outputs:              # an explicit stack: models may be thousands of layers deep
        stack = [(t.node, None)]
        while stack:
            node, parents = stack[-1]
            if parents is None:                      # first reached
                if state.get(id(node)) == "done":
                    stack.pop()
                    continue
                if state.get(id(node)) == "active":
                    raise ValueError("The layer graph has a cycle.")
                state[id(node)] = "active"
                first_visit.setdefault(id(node.layer), len(first_visit))
                parents = iter(node.parents)
                stack[-1] = (node, parents)
            parent = next(parents, None)
            if parent is None:                       # every parent done: the node is
                state[id(node)] = "done"
                order.append(node)
                stack.pop()
            else:
                stack.append((parent, None))
    return order, first_visit


def _keras_layer_order(nodes, first_visit, inputs):
    """``Model.layers`` in Keras's order: deepest first, ties by ``first_visit``.

    A node's depth is the longest path from it to an output (an output node has depth 0;
    a parent is one deeper than its deepest child). A layer's depth is that of its deepest
    node met so far, going from the outputs back (``nodes`` reversed), and a node of a shared
    layer is raised to its layer's depth before its parents are set. Inputs the outputs do
    not read come at depth 0, ahead of the rest. This is the order Keras's ``map_graph``
    gives ``operations``, and ``weights`` follows it."""
    in_graph = {id(n) for n in nodes}
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(nodes):
        depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        node_depth[id(node)] = layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        for parent in node.parents:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(node_depth.get(id(parent), 0), depth + 1)
    rank = dict(first_visit)
    for t in inputs:
        if id(t.node.layer) not in layer_depth:
            layer_depth[id(t.node.layer)], rank[id(t.node.layer)] = 0, -1
            layers[id(t.node.layer)] = t.node.layer
    keys = sorted(layer_depth, key=lambda k: (-layer_depth[k], rank[k]))
    return [layers[k] for k in keys]


class Model(Trainer, Layer):
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
        nodes, first_visit = _walk(self.outputs)
        input_nodes = {id(t.node) for t in self.inputs}
        for node in nodes:
            if isinstance(node.layer, InputLayer) and id(node) not in input_nodes:
                raise ValueError(
                    f"Graph disconnected: the output depends on Input '{node.layer.name}', "
                    "which is not among the model's inputs."
                )
        self._nodes = [n for n in nodes if not isinstance(n.layer, InputLayer)]
        self._layers = _keras_layer_order(nodes, first_visit, self.inputs)
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

    # --- running the graph -------------------------------------------------------------------
    def _standardize_inputs(self, x):
        if self._multi_input:
            arrays = to_list(x)
        elif isinstance(x, (list, tuple)) and x and all(isinstance(a, np.ndarray) for a in x):
            arrays = list(x)                 # a list of arrays: one per model input
        else:
            arrays = [x]                     # one array (or nested lists of numbers)
        if isinstance(x, dict):
            arrays = [x[t.node.layer.name] for t in self.inputs]
        if len(arrays) != len(self.inputs):
            raise ValueError(
                f"Model '{self.name}' expects {len(self.inputs)} input(s), but received "
                f"{len(arrays)} array(s)."
            )
        out = []
        for i, (a, t) in enumerate(zip(arrays, self.inputs)):
            a = check_array(a, f"Input {i} of model '{self.name}'", t.dtype)
            expected = t.shape             # the batch size is not checked, as in Keras: a
            if a.ndim != len(expected) or any(  # stateful layer checks its own, per batch
                    e is not None and e != s for e, s in zip(expected[1:], a.shape[1:])):
                raise ValueError(
                    f"Input {i} of layer \"{self.name}\" is incompatible with the layer: "
                    f"expected shape={expected}, found shape={a.shape}"
                )
            out.append(a)
        return out

    def _pack(self, arrays):
        """A list of input arrays as ``forward`` takes them: the list, or its only array."""
        return arrays if self._multi_input else arrays[0]

    def forward(self, inputs, *, training=False, mask=None):
        """Run the graph; return the outputs and the tape that ``backward`` needs."""
        return self._run_graph(inputs, training, keep_tape=True)[:2]

    def call(self, inputs, training=False, mask=None):
        """Run the graph for its outputs alone: layers keep no caches (inference)."""
        return self._run_graph(inputs, training, keep_tape=False)[0]

    def _run_graph(self, inputs, training, keep_tape):
        """``(outputs, tape, output masks)``: the masks are Keras's ``y_pred._keras_mask``
        (None where no mask reaches an output), which weigh the loss and the metrics."""
        values, masks = [None] * self._slots, [None] * self._slots
        for i, a in enumerate(to_list(inputs) if self._multi_input else [inputs]):
            values[i] = a
        tape = []
        for node, ins, states, outs in self._plan:
            layer = node.layer
            if node.list_input:
                main = [values[i] for i in ins]
                mask_arg = [masks[i] for i in ins]
                if all(m is None for m in mask_arg):
                    mask_arg = None
            else:
                main, mask_arg = values[ins[0]], masks[ins[0]]
            if mask_arg is not None and not layer.supports_masking:
                _warn_mask_dropped(layer)
                mask_arg = None
            kwargs = {"initial_state": [values[i] for i in states]} if states else {}
            for key in layer.call_options:          # Attention's return_attention_scores, ...
                if key in node.kwargs:
                    kwargs[key] = node.kwargs[key]
            train = node.kwargs.get("training")
            train = training if train is None else train
            if keep_tape:
                out, cache = layer.forward(main, training=train, mask=mask_arg, **kwargs)
                tape.append((node, cache))
            else:
                out = layer.call(main, training=train, mask=mask_arg, **kwargs)
            out_masks = layer.compute_mask(main, mask_arg)
            if node.multi_output:
                out_masks = to_list(out_masks)   # (a mask for the first outputs only:
                out_masks += [None] * (len(outs) - len(out_masks))   # Attention's scores)
                for i, a, m in zip(outs, to_list(out), out_masks):
                    values[i], masks[i] = a, m
            else:
                values[outs[0]], masks[outs[0]] = out, out_masks
        outputs = [values[i] for i in self._output_slots]
        out_masks = [masks[i] for i in self._output_slots]
        if not self._multi_output:
            return outputs[0], tape, out_masks[0]
        return outputs, tape, out_masks

    def backward(self, tape, doutputs, input_gradients=True, sparse=False):
        """dLoss/d(inputs) and dLoss/d(weights) (in ``self.weights`` order) from dLoss/d(outputs).

        With ``input_gradients=False`` (training: the inputs are data) layers that can skip
        dLoss/d(their input) do so where that input is one of the model's inputs, and those
        come back as None. With ``sparse=True`` (training) an Embedding's gradient is an
        ``unrolled.optimizers.sparse.IndexedSlices``, one row per looked-up position."""
        grads = {}
        data = set() if input_gradients else {id(t) for t in self.inputs}

        def add(t, g):
            if g is None:
                return
            grads[id(t)] = g if id(t) not in grads else grads[id(t)] + g

        for t, g in zip(self.outputs, to_list(doutputs) if self._multi_output else [doutputs]):
            add(t, g)
        wgrads = {}
        for node, cache in reversed(tape):
            douts = [grads.get(id(t)) for t in node.outputs]
            if all(g is None for g in douts):
                continue
            if node.multi_output:
                dy = douts
            else:
                dy = douts[0]
            if id(node.flat_inputs[0]) in data and node.layer.optional_input_gradient:
                dinputs, dweights = node.layer.backward(cache, dy, input_gradient=False)
            elif sparse and getattr(node.layer, "sparse_gradients", False):
                dinputs, dweights = node.layer.backward(cache, dy, sparse=True)
            else:
                dinputs, dweights = node.layer.backward(cache, dy)
            for t, g in zip(node.flat_inputs, dinputs):
                add(t, g)
            for w, g in zip(node.layer.weights, dweights):
                wgrads[id(w)] = g if id(w) not in wgrads else wgrads[id(w)] + g
        dweights = [wgrads.get(id(w), np.zeros_like(w.value)) for w in self.weights]
        dinputs = [grads.get(id(t)) for t in self.inputs]
        return dinputs, dweights

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self.outputs]
        return shapes if self._multi_output else shapes[0]

    def _eager_call(self, inputs, training=False, mask=None, initial_state=None):
        return self.call(self._pack(self._standardize_inputs(inputs)), training=bool(training))

    # --- inference ---------------------------------------------------------------------------
    def predict_on_batch(self, x):
        """The outputs for one batch, as NumPy arrays of the model's dtype."""
        arrays = self._standardize_inputs(x)
        with blas_threads(self, arrays[0].shape[0]):
            return self.call(self._pack(arrays), training=False)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` computed in batches of ``batch_size`` (default 32); ``steps``
        predicts the first that many batches only (see ``models.data``)."""
        from ..callbacks import CallbackList
        from . import data, sources
        if sources.is_batch_source(x):       # a generator or PyDataset: x from each batch
            source = sources.BatchSource(
                x, data.check_steps("steps", steps), False,
                lambda batch: (self._standardize_inputs(data.unpack(batch, "a batch")[0]
                                                        if isinstance(batch, (tuple, list))
                                                        else batch), None, None))
        else:
            arrays = self._standardize_inputs(x)
            n = arrays[0].shape[0]
            for a in arrays[1:]:
                if a.shape[0] != n:
                    raise ValueError("All inputs must have the same number of samples; "
                                     f"received {[a.shape[0] for a in arrays]}.")
            if n == 0:       # 0 samples in, 0 samples out, of the outputs' shapes
                return self.call(self._pack(arrays), training=False)
            source = sources.ArraySource(arrays, np.zeros(n), None,
                                         data.Batches(n, batch_size, steps, what="steps"))
        verbose = 1 if verbose == "auto" else verbose
        known = source.num_batches
        cbs = callbacks if isinstance(callbacks, CallbackList) else CallbackList(
            to_list(callbacks), model=self,
            params={"epochs": 1, "verbose": verbose, "steps": known})
        bar = Progbar(known, verbose=verbose if known else 0)
        cbs.on_predict_begin()
        chunks = []
        for step, (batch, _, _) in enumerate(source.epoch()):
            cbs.on_predict_batch_begin(step)
            with blas_threads(self, len(batch[0])):
                out = self.call(self._pack(batch), training=False)
            chunks.append(to_list(out) if self._multi_output else [out])
            cbs.on_predict_batch_end(step, {"outputs": out})
            bar.update(step + 1)
        source.end_epoch()
        cbs.on_predict_end()
        if not chunks:
            raise ValueError("predict: `x` gave no batch.")
        outs = [c[0] if len(chunks) == 1 else np.concatenate(c, axis=0)
                for c in zip(*chunks)]
        return outs if self._multi_output else outs[0]

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
