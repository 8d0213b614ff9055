"""Characters to integer ids and back, for character-level language models.

    vocab = Vocabulary(text)          # every distinct character of the text, sorted
    ids = vocab.encode("Nel mezzo")   # array([16, 34, 41, ...])
    vocab.decode(ids)                 # 'Nel mezzo'

min-char-rnn's ``char_to_ix`` / ``ix_to_char`` with the edge cases decided: a character
the vocabulary has never seen is an error naming it, unless an ``oov`` policy says
otherwise.
"""
import numpy as np

OOV_POLICIES = ("error", "skip", "unknown")
UNKNOWN = "\ufffd"   # how the "unknown" id decodes: the Unicode replacement character


class Vocabulary:
    """The characters of ``text``, each with an integer id ``0 .. size-1``.

    ``oov`` (out of vocabulary) decides what ``encode`` does with an unseen character:

    * ``"error"`` (default): raise ``ValueError`` naming every unknown character;
    * ``"skip"``: drop it, so the ids can be shorter than the text;
    * ``"unknown"``: map it to id 0, reserved for that (as Keras's ``StringLookup``
      reserves index 0 for ``[UNK]``); id 0 decodes to ``"\\ufffd"``.
    """

    def __init__(self, text, oov="error"):
        if not isinstance(text, str):
            raise TypeError(f"Vocabulary expects a str of text; received {type(text).__name__}.")
        if not text:
            raise ValueError("Vocabulary needs a non-empty text to collect its characters from.")
        if oov not in OOV_POLICIES:
            raise ValueError(f"oov must be one of {OOV_POLICIES}; received {oov!r}.")
        self.oov = oov
        self.chars = ([UNKNOWN] if oov == "unknown" else []) + sorted(set(text) - {UNKNOWN})
        self.char_to_id = {c: i for i, c in enumerate(self.chars)}

    @property
    def size(self):
        """How many ids there are: ``Embedding(input_dim=vocab.size, ...)``."""
        return len(self.chars)

    def __len__(self):
        return len(self.chars)

    def __contains__(self, char):
        return char in self.char_to_id

    def __repr__(self):
        return f"Vocabulary({self.size} characters, oov={self.oov!r})"

    def unknown_chars(self, text):
        """The characters of ``text`` not in the vocabulary, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self.char_to_id))

    def encode(self, text):
        """The ids of the characters of ``text``, an int64 array of shape ``(len(text),)``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str; received {type(text).__name__}.")
        unknown = self.unknown_chars(text)
        if unknown and self.oov == "error":
            shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValueError(
                f"The text has {len(unknown)} character(s) outside the vocabulary: {shown}{more}. "
                "Build the Vocabulary from a text that contains them, clean them from the "
                "input, or choose Vocabulary(..., oov='skip') or oov='unknown'."
            )
        if self.oov == "skip":
            text = "".join(c for c in text if c in self.char_to_id)
        get = self.char_to_id.get
        return np.array([get(c, 0) for c in text], dtype=np.int64)

    def decode(self, ids):
        """The text of a sequence of ids (any integer array-like of one axis)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise ValueError(f"decode expects a 1-D sequence of integer ids; received shape "
                             f"{ids.shape} and dtype {ids.dtype}.")
        bad = ids[(ids < 0) | (ids >= self.size)]
        if bad.size:
            raise ValueError(f"Ids {sorted(set(bad.tolist()))[:10]} are outside this vocabulary's "
                             f"range [0, {self.size}).")
        return "".join(self.chars[i] for i in ids.tolist())
