"""Models with Keras's names: ``Model`` (functional) and ``Sequential``."""
from .functional import Model
from .sequential import Sequential
from .saving import load_model, model_from_json, save_model

__all__ = ["Model", "Sequential"]
