"""``keras.preprocessing.sequence.pad_sequences``, where Keras 2 scripts import it from."""
from ..sequence_utils import pad_sequences  # noqa: F401
