"""Models with Keras's names: ``Model`` (functional) and ``Sequential``."""
from .functional import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]

# ``keras.models``' file functions. They live in ``unrolled.saving`` (above the models and
# the file formats, which build models), so they are imported at their first use.
_SAVING = ("load_model", "model_from_json", "save_model")


def __getattr__(name):
    if name in _SAVING:
        from ..saving import model_files
        return getattr(model_files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SAVING))
