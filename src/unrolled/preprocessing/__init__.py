"""Keras 2's ``keras.preprocessing`` names that recurrent scripts import:
``preprocessing.sequence.pad_sequences``."""
from . import sequence  # noqa: F401
