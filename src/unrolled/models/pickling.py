"""``copy.deepcopy(model)`` and ``pickle``: a model goes through unrolled's own format.

Keras 3 pickles a model by saving it to an in-memory ``.keras`` archive and loading it
again (``KerasSaveable.__reduce__``), and ``copy.deepcopy`` takes the same road. unrolled
does the same with its native format, NumPy alone: ``Model.__reduce__`` returns::

    (unrolled.models.pickling.rebuild, (payload, functions, classes))

* ``payload`` (bytes): the archive a ``.unrolled.npz`` file holds, under the format
  ``unrolled.pickle/1``, written and read by the same code (``saving.npz_model.
  archive_bytes``/``read_archive``; the training state's members, ``__compile__`` and
  ``optimizer/vars/0`` ..., are described in ``saving.training_state``): the config, the
  weights and, for a compiled model, the compile arguments and the optimizer's variables
  in Keras's order (iteration, learning rate, slots). It is read back as files are
  (``io.safety``: members by name, ``.npy`` headers checked, ``allow_pickle`` never): the
  payload is data. Only functions are written differently: a file names them, a pickle
  carries them beside the payload (``training_state.ByReference``).
* ``functions``: the losses, metrics and learning rates that ``compile`` was given as
  Python functions (alone or in ``LossFunctionWrapper(fn, gradient_fn)`` and
  ``MeanMetricWrapper(fn)``, whose other arguments go in ``__compile__``), which pickle
  *by reference* (module and name), as Python pickles any function; unpickling imports
  their module, as it would for the function alone. A lambda or a local function cannot
  be pickled (``PicklingError``), but is kept as it is by ``copy.deepcopy``, which copies
  no function.
* ``classes``: ``{name: class}`` for the layers and cells written the Keras way
  (``layers/custom.py``), by reference as well; ``rebuild`` builds them as
  ``load_model(..., custom_objects=classes)`` does (a class defined inside a function
  deep-copies, but does not pickle, as Python's rule for classes goes).

The copy holds what a ``.keras`` round trip holds in Keras 3, so ``fit`` continues as the
original's would: the weights, the compile arguments, the optimizer's iterations, learning
rate (also one set by a callback) and slots (Adam's moments, SGD's momentum), the
learning-rate schedule. As in Keras it does not hold the metrics' running totals (the copy
builds its metrics on its first batch; ``fit`` and ``evaluate`` reset them anyway), nor a
stateful RNN's carried states (the copy starts from zeros, as after ``reset_states()``),
nor where a random stream stands (the copy's dropout masks are not the ones the original
would draw next). Beyond Keras's copy, it keeps
``optimizer.exclude_from_weight_decay``. Refused, with the reason: subclassed models (their
structure is Python code, not a config) and compile arguments that are neither unrolled's
built-in classes nor Python functions.
"""
_FORMAT = "unrolled.pickle/1"


def reduce_model(model):
    """``(rebuild, args)`` for ``Model.__reduce__``; raises TypeError naming what cannot be
    copied."""
    from ..saving import npz_model, training_state
    if getattr(type(model), "_user_call", None) is not None:
        raise TypeError(
            f"Cannot pickle or copy model '{model.name}' ({type(model).__name__}): it is a "
            "subclassed model, whose structure is its Python code, not a config. Build a new "
            "one in code and copy the weights: new.set_weights(model.get_weights()) (or "
            "save_weights/load_weights with .weights.npz).")
    functions = training_state.ByReference()
    compiled = training_state.compile_state(model, functions,
                                            f"Cannot pickle or copy model '{model.name}'")
    try:
        payload = npz_model.archive_bytes(model, _FORMAT, compiled)
    except (ValueError, TypeError) as e:  # not built; a layer or a value no config can hold
        raise type(e)(f"Cannot pickle or copy model '{model.name}': {e}") from None
    return rebuild, (payload, tuple(functions.functions), _custom_classes(model))


def rebuild(payload, functions=(), classes=None):
    """The model a ``reduce_model`` payload describes (compiled, optimizer state restored)."""
    from ..io.safety import ModelFileError
    from ..saving import custom_objects as custom, npz_model, training_state
    if not isinstance(payload, (bytes, bytearray)):
        raise ModelFileError("the pickled model is not an unrolled payload (bytes expected).")
    with custom.scope(classes or None, "unpickling a model"):
        return npz_model.read_archive(bytes(payload), "the pickled model", _FORMAT, True,
                                      training_state.ByReference(functions))


def _custom_classes(model):
    """``{registered name: class}`` of the layers and cells written the Keras way."""
    from ..saving.custom_objects import is_custom
    found, stack, seen = {}, list(model.layers), set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if is_custom(obj):
            for cell in getattr(obj, "_cells", None) or [obj]:
                found[_registered_name(type(cell))] = type(cell)
        for attr in ("cell", "layer", "forward_layer", "backward_layer"):
            sub = getattr(obj, attr, None)
            if sub is not None and hasattr(sub, "get_config"):
                stack.append(sub)
        stack.extend(getattr(obj, "cells", None) or [])
        if hasattr(obj, "_sublayers"):
            stack.extend(obj._sublayers())
    return found


def _registered_name(cls):
    import sys
    registry = sys.modules.get("unrolled.saving")
    return registry.get_registered_name(cls) if registry is not None else cls.__name__
