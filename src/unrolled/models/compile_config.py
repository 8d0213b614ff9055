"""``compile()``'s arguments from a Keras 3 ``compile_config`` (a ``.keras`` file's), built
from unrolled's own classes by name: configs are data, nothing in them is imported or run."""
import inspect


def compile_kwargs(config, where):
    """The ``compile`` keyword arguments a saved ``compile_config`` describes. Raises
    ValueError or NotImplementedError for what unrolled cannot honour."""
    from .. import losses, metrics, optimizers

    for key in ("loss_weights", "weighted_metrics"):
        if config.get(key):
            raise NotImplementedError(f"{where}: compile({key}=...) is not implemented")
    return {"optimizer": _build(config["optimizer"], optimizers, where, _optimizer_config),
            "loss": _build(config.get("loss"), losses, where),
            "metrics": [_build(m, metrics, where) for m in config.get("metrics") or []]}


def _build(entry, module, where, adjust=None):
    """A name as it is (``compile`` resolves it), or ``{"class_name", "config"}`` as an
    instance of the module's class of that name."""
    if entry is None or isinstance(entry, str):
        return entry
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ValueError(f"{where}: cannot read {entry!r}")
    cls = getattr(module, entry["class_name"], None)
    if not isinstance(cls, type):
        raise ValueError(f"{where}: {entry['class_name']!r} is not one of unrolled's "
                         f"{module.__name__.rsplit('.', 1)[-1]}")
    config = dict(entry.get("config") or {})
    if config.get("dtype") in (None, "float32"):        # Keras's default, ours too
        config.pop("dtype", None)
    if adjust is not None:
        config = adjust(config, where)
    known = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in known.values()):
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"{where}: {entry['class_name']} has no option {unknown}")
    return cls(**config)


def _optimizer_config(config, where):
    """A learning-rate schedule in an optimizer's config, as one of unrolled's."""
    from ..optimizers import schedules
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        config["learning_rate"] = _build(lr, schedules, where)
    return config
