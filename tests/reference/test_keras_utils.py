"""``keras.utils.pad_sequences``/``to_categorical`` (also under Keras 2's
``preprocessing.sequence``) and the functional ``layers.concatenate``/``layers.add``
(issue 20.10), against Keras's own, on the inputs scripts hand them."""
import keras
import numpy as np
import pytest

import unrolled

CASES = [
    dict(sequences=[[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]),
    dict(sequences=[[1, 2, 3], [4], [5, 6, 7, 8, 9]], maxlen=3),
    dict(sequences=[[1, 2, 3], [4], [5, 6, 7, 8, 9]], maxlen=3, padding="post",
         truncating="post"),
    dict(sequences=[[1, 2, 3], [4]], maxlen=6, padding="post", value=-1),
    dict(sequences=[[1.5, 2.5], [3.25]], dtype="float32", value=0.5),
    dict(sequences=[np.ones((2, 3)), np.zeros((4, 3))], maxlen=3, dtype="float32"),
    dict(sequences=[["a", "b"], ["c"]], dtype=object, value="<pad>"),
    dict(sequences=[[1, 2], [3]], maxlen=1),
]


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_pad_sequences_equals_keras(case):
    want = keras.utils.pad_sequences(**case)
    for f in (unrolled.utils.pad_sequences, unrolled.preprocessing.sequence.pad_sequences):
        got = f(**case)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert (got == want).all()


def test_pad_sequences_errors_as_keras():
    for kwargs in (dict(padding="middle"), dict(truncating="middle"), dict(value="x")):
        with pytest.raises(ValueError) as ref:
            keras.utils.pad_sequences([[1, 2], [3]], maxlen=1, **kwargs)
        with pytest.raises(ValueError) as ours:
            unrolled.utils.pad_sequences([[1, 2], [3]], maxlen=1, **kwargs)
        assert str(ours.value).split("\n")[0] == str(ref.value).split("\n")[0]


@pytest.mark.parametrize("x,num_classes", [([0, 2, 1], None), ([[1], [3]], 5),
                                           (np.array([[0, 1], [2, 0]]), None), ([4], 6)])
def test_to_categorical_equals_keras(x, num_classes):
    want = keras.utils.to_categorical(x, num_classes)
    got = unrolled.utils.to_categorical(x, num_classes)
    assert got.dtype == want.dtype and got.shape == want.shape and (got == want).all()


def test_functional_merge_helpers(rng):
    a, b = rng.standard_normal((2, 3, 4)).astype("float32")
    for name in ("concatenate", "add"):
        def build(m):
            x, y = m.Input((4,)), m.Input((4,))
            return m.Model([x, y], getattr(m.layers, name)([x, y]))
        np.testing.assert_allclose(build(unrolled).predict([a, b], verbose=0),
                                   build(keras).predict([a, b], verbose=0), rtol=1e-6)
