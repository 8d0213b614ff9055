"""Models with Keras's names: ``Model`` (functional) and ``Sequential``."""
from .functional import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]
