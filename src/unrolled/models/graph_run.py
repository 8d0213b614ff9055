"""Running a functional model's graph: ``forward`` and ``backward``, ``call`` and ``predict``.

``GraphRunner`` is the half of ``Model`` (a mixin, as ``training.Trainer`` is) that runs the
plan ``Model._plan_graph`` made: ``forward`` runs the nodes in order and keeps each layer's
cache on a *tape*; ``backward`` walks the tape in reverse, handing each layer dLoss/d(its
outputs) and summing what it returns into dLoss/d(its inputs) and dLoss/d(its weights).
``call`` runs the graph without a tape (inference), ``predict`` it batch by batch.
"""
import numpy as np

from ..fast.threads import limit as blas_threads
from ..layers.base import check_array
from ..progbar import Progbar
from ..utils import to_list


def _warn_mask_dropped(layer):
    """Keras's behaviour: a layer that cannot use a mask drops it, with a warning."""
    import warnings
    warnings.warn(
        f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a "
        "mask attached to it, but it does not support masking: the mask stops here and "
        "downstream layers will not see it.", stacklevel=3)


class GraphRunner:
    """The running half of ``Model``: its graph forward and backward, and inference."""

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
