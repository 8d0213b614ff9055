"""Keras's ``keras.preprocessing`` names that recurrent scripts import:
``preprocessing.sequence.pad_sequences`` (Keras 2) and
``preprocessing.timeseries_dataset_from_array`` (keras-io's timeseries examples)."""
from . import sequence  # noqa: F401
from ..sequence_utils import timeseries_dataset_from_array  # noqa: F401
