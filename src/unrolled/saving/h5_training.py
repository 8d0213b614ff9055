"""The training state of a legacy ``.h5`` model file, as Keras 3 writes and reads it
(``keras.src.legacy.saving``: ``save_model(m, "x.h5", include_optimizer=True)``).

Writing, for a compiled model with ``include_optimizer``:

* the root attribute ``training_config``: JSON ``{"loss", "loss_weights": null,
  "metrics", "weighted_metrics": null, "run_eagerly": false, "steps_per_execution": 1,
  "jit_compile": false, "optimizer_config": {"class_name", "config"}}``, the loss and
  metrics in Keras's legacy form: a name as ``compile`` received it (``"mse"``), a
  function by its name (unrolled's own, or the ``"package>name"`` it was registered
  under; any other function is refused, naming it), one of unrolled's classes as
  ``{"class_name", "config"}``;
* the group ``optimizer_weights``: one dataset per variable of ``optimizer.variables``
  (iteration, learning rate, slots, in Keras's order), named by the variable's path and
  listed in that order by the group's ``weight_names`` attribute.

Reading, with ``load_model(compile=True)``: ``compile`` from ``training_config``, then,
as Keras's loader does, the optimizer is built over the model's trainable weights and
takes the ``weight_names`` datasets in order. Keras's loader warns and starts from a
fresh optimizer when the counts differ (a tf.keras 2 file, whose optimizers keep no
learning-rate variable), and so does this one; a dataset of the wrong shape or dtype is
refused (``ModelFileError`` naming it). A ``training_config`` that unrolled cannot
compile (a per-output loss, ``loss_weights``, an optimizer option it lacks, a function
not registered in this program) leaves the model uncompiled with a warning naming the
reason, as a ``.keras`` file's ``compile_config`` does; its optimizer weights are then
not read.
"""
import json

from ..io.safety import ModelFileError, read_attr, read_dataset


def training_config(model):
    """Keras 3's legacy ``training_config`` of a compiled model (None if not compiled).
    Raises TypeError naming a compile argument a file cannot hold."""
    from .. import losses, metrics, optimizers
    from ..losses import LossFunctionWrapper
    from ..metrics import MeanMetricWrapper
    from .training_state import ByName
    if not getattr(model, "compiled", False) or model.optimizer is None:
        return None
    prefix = f"Cannot save the training state of model '{model.name}' to .h5"

    def entry(obj, module, what):
        if obj is None or isinstance(obj, str):
            return obj
        cls = type(obj)
        if cls in (LossFunctionWrapper, MeanMetricWrapper):
            raise TypeError(f"{prefix}: its {what} {obj!r} is unrolled's {cls.__name__}, which "
                            "a legacy .h5 training_config cannot hold; compile with the "
                            "function itself, save as .unrolled.npz, or save without it: "
                            "unrolled.saving.save_model(model, path, include_optimizer=False).")
        if callable(obj) and not hasattr(obj, "get_config"):     # a function, by name
            return ByName().write(obj, module, what, prefix)["function"]
        if getattr(module, cls.__name__, None) is cls and hasattr(obj, "get_config"):
            return {"class_name": cls.__name__, "config": obj.get_config()}
        raise TypeError(f"{prefix}: its {what} {obj!r} is neither one of unrolled's "
                        f"{module.__name__.rsplit('.', 1)[-1]} nor a function.")

    opt = model.optimizer
    lr = opt._learning_rate
    if callable(lr) and not hasattr(lr, "value") and not hasattr(lr, "get_config"):
        raise TypeError(f"{prefix}: its optimizer's learning rate {lr!r} is a function, which "
                        "a legacy .h5 training_config cannot hold; use a learning-rate "
                        "schedule class, register it and save as .unrolled.npz, or save "
                        "without it: "
                        "unrolled.saving.save_model(model, path, include_optimizer=False).")
    config = opt.get_config()
    optimizer = {"class_name": entry(opt, optimizers, "optimizer")["class_name"],
                 "config": config}
    args = model._compile_args
    return {"loss": entry(args["loss"], losses, "loss"), "loss_weights": None,
            "metrics": [entry(m, metrics, "metric") for m in args["metrics"]] or None,
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
            "jit_compile": False, "optimizer_config": optimizer}


def write(f, model, include_optimizer):
    """Write ``training_config`` and ``optimizer_weights`` into the open h5py file ``f``
    (nothing for an uncompiled model or without ``include_optimizer``)."""
    config = training_config(model) if include_optimizer else None
    if config is None:
        return
    f.attrs["training_config"] = json.dumps(config).encode("utf8")
    variables = model.optimizer.variables
    group = f.create_group("optimizer_weights")
    names = []
    for i, var in enumerate(variables):
        name = var.path
        if name in names:                                 # paths that are not unique
            name = f"{name}_{i}"
        names.append(name)
        group.create_dataset(name, data=var.numpy())
    group.attrs["weight_names"] = [n.encode("utf8") for n in names]


def restore(model, f, path, file_size):
    """``compile`` ``model`` from the open file's ``training_config`` (if any) and give its
    optimizer the ``optimizer_weights``, as Keras's legacy loader does."""
    from .keras_format import _warn, parse_json
    from .legacy_h5 import _attr_list
    from ..io.h5_sandbox import H5Dataset, H5Group

    raw = read_attr(f, "training_config")
    if raw is None:
        return
    config = parse_json(raw if isinstance(raw, (bytes, str)) else bytes(raw),
                        "training_config", path)
    where = f"{path!r} training_config"
    try:
        model.compile(**_compile_kwargs(config, where))
    except (ValueError, TypeError, NotImplementedError, KeyError) as e:
        model.compiled = False
        _warn(f"{path!r}: the model was not compiled from the file's training_config ({e}); "
              "its optimizer state is not read: call compile() after loading.")
        return
    group = f.get("optimizer_weights")
    if group is None:
        return
    if not isinstance(group, H5Group):
        raise ModelFileError(f"{path!r}: optimizer_weights is not a group.")
    names = _attr_list(group, "weight_names")
    optimizer = model.optimizer
    if len(names) != len(optimizer.variables):     # not an optimizer saved before its first step
        optimizer.build(model.trainable_weights)
    variables = optimizer.variables
    if len(names) != len(variables):
        _warn(f"{path!r}: skipping the optimizer's state: optimizer_weights holds "
              f"{len(names)} variables, optimizer '{optimizer.name}' has {len(variables)}; "
              "it starts afresh (as in Keras).")
        return
    values = []
    for name, var in zip(names, variables):
        ds = group.get(name)
        where = f"optimizer_weights/{name}"
        if not isinstance(ds, H5Dataset):
            raise ModelFileError(f"{path!r}: {where} is listed in weight_names but missing.")
        value = read_dataset(ds, var.shape, where, path, file_size)
        if value.dtype != var.numpy().dtype:
            raise ModelFileError(f"{path!r}: {where} has dtype {value.dtype}; optimizer "
                                 f"variable '{var.path}' has dtype {var.numpy().dtype}.")
        values.append(value)
    for var, value in zip(variables, values):
        var.assign(value)


def _compile_kwargs(config, where):
    """``compile``'s arguments from a legacy ``training_config`` (unrolled's classes by
    name; functions by registered name)."""
    from .. import losses, metrics, optimizers
    from ..models.compile_config import _build, _optimizer_config
    from .training_state import ByName
    if not isinstance(config, dict):
        raise ValueError(f"{where} is not a JSON object")
    for key in ("loss_weights", "weighted_metrics"):
        if config.get(key):
            raise NotImplementedError(f"{where}: compile({key}=...) is not implemented")

    def entry(value, module, what):
        if isinstance(value, str) and ">" in value:          # a registered function
            return ByName().read({"function": value}, module, what, where)
        if isinstance(value, list) or (isinstance(value, dict) and "class_name" not in value):
            raise NotImplementedError(f"{where}: a {what} per output ({value!r}) is not "
                                      "implemented")
        return _build(value, module, where)

    def metric(value):
        """Keras's legacy reader builds every metric name but compile's accuracy and
        crossentropy ones as the metric object: ``"mae"`` is then logged as
        ``mean_absolute_error``, as after Keras's ``load_model``."""
        if isinstance(value, str) and ">" not in value \
                and value not in ("accuracy", "acc", "crossentropy", "ce"):
            return metrics.get(value)
        return entry(value, metrics, "metric")

    listed = config.get("metrics") or []
    if not isinstance(listed, list):
        raise NotImplementedError(f"{where}: metrics per output ({listed!r}) are not "
                                  "implemented")
    return {"optimizer": _build(config["optimizer_config"], optimizers, where,
                                _optimizer_config),
            "loss": entry(config.get("loss"), losses, "loss"),
            "metrics": [metric(m) for m in listed]}
