"""unrolled.ops against keras.ops (TensorFlow backend) on the same inputs: values and dtypes."""
import numpy as np
import pytest

import unrolled
from unrolled import ops

import keras  # noqa: E402  (a test dependency: CI installs it, so no skip)
kops = keras.ops

R = np.random.default_rng(7)
X = R.standard_normal((2, 3, 4)).astype("float32")
Y = R.standard_normal((2, 3, 4)).astype("float32")
M = R.standard_normal((4, 5)).astype("float32")
POS = (np.abs(X) + 0.1).astype("float32")
I = R.integers(-3, 4, (3, 4)).astype("int32")
B = X > 0

# (name, args, kwargs): each is run by keras.ops and by unrolled.ops.
CASES = [
    ("cast", (X, "int32"), {}), ("cast", (I, "float32"), {}), ("cast", (B, "float32"), {}),
    ("split", (X, 2), {"axis": 2}), ("split", (X, [1, 3]), {"axis": -1}), ("split", (X, 2), {}),
    ("take", (X, [2, 0]), {"axis": 1}), ("take", (X, [5, -1]), {}),
    ("take", (X, np.array([[0, 1], [3, 2]])), {"axis": -1}),
    ("softmax", (X,), {}), ("softmax", (X,), {"axis": 1}), ("softmax", (X * 30,), {}),
    ("softmax", (X,), {"axis": (1, 2)}),
    ("concatenate", ([X, Y],), {}), ("concatenate", ([X, Y],), {"axis": -1}),
    ("stack", ([X, Y],), {}), ("stack", ([X, Y],), {"axis": 2}),
    ("where", (B, X, Y), {}), ("where", (B, X, 0.0), {}), ("where", (B,), {}),
    ("matmul", (X, M), {}), ("matmul", (M.T, M), {}), ("matmul", (I, I.T), {}),
    ("mean", (X,), {}), ("mean", (X,), {"axis": 1}), ("mean", (X,), {"axis": (0, 2), "keepdims": True}),
    ("mean", (I,), {"axis": 0}),
    ("sum", (X,), {}), ("sum", (X,), {"axis": -1, "keepdims": True}), ("sum", (I,), {"axis": 1}),
    ("sum", (B,), {"axis": 1}),
    ("max", (X,), {}), ("max", (X,), {"axis": 1}), ("max", (X,), {"axis": 0, "initial": 0.5}),
    ("min", (X,), {"axis": [0, 2], "keepdims": True}), ("min", (I,), {}),
    ("expand_dims", (X, 1), {}), ("expand_dims", (X, -1), {}),
    ("squeeze", (X[:, :1],), {}), ("squeeze", (X[:, :1],), {"axis": 1}),
    ("reshape", (X, (6, 4)), {}), ("reshape", (X, (-1, 2)), {}),
    ("transpose", (X,), {}), ("transpose", (X, (0, 2, 1)), {}),
    ("any", (B,), {}), ("any", (B,), {"axis": 1}), ("all", (B,), {"axis": -1, "keepdims": True}),
    ("all", (I,), {}),
    ("exp", (X,), {}), ("exp", (I,), {}), ("log", (POS,), {}), ("tanh", (X,), {}),
    ("sigmoid", (X * 10,), {}), ("relu", (X,), {}), ("sqrt", (POS,), {}), ("sqrt", (np.abs(I),), {}),
    ("square", (X,), {}), ("square", (I,), {}), ("abs", (X,), {}), ("abs", (I,), {}),
    ("absolute", (X,), {}),
    ("zeros", ((2, 3),), {}), ("zeros", ((2,),), {"dtype": "int32"}), ("ones", ((3, 1),), {}),
    ("zeros_like", (X,), {}), ("ones_like", (I,), {}), ("ones_like", (X,), {"dtype": "int32"}),
    ("convert_to_tensor", ([[1.0, 2.0]],), {}), ("convert_to_tensor", ([1, 2],), {}),
    ("convert_to_tensor", (X,), {"dtype": "float64"}),
    ("einsum", ("btf,fu->btu", X, M), {}), ("einsum", ("bij,bkj->bik", X, Y), {}),
    ("einsum", ("ij->j", I), {}),
    ("dot", (X, M), {}), ("dot", (M[:, 0], M[:, 1]), {}), ("dot", (M.T, M), {}),
    ("multiply", (X, Y), {}), ("multiply", (X, 2.0), {}), ("multiply", (I, X[0]), {}),
    ("add", (X, Y), {}), ("add", (3, X), {}), ("add", (I, I), {}),
    ("subtract", (X, Y), {}), ("subtract", (X, 1), {}),
    ("divide", (X, POS), {}), ("divide", (I, 2), {}), ("divide", (X, 4.0), {}),
    ("maximum", (X, Y), {}), ("maximum", (X, 0.0), {}), ("minimum", (X, Y), {}),
    ("minimum", (I, 1), {}),
    ("clip", (X, -0.5, 0.5), {}), ("clip", (I, -1, 2), {}),
    ("argmax", (X,), {}), ("argmax", (X,), {"axis": 1}), ("argmax", (X,), {"axis": -1, "keepdims": True}),
    ("cumsum", (X,), {"axis": 1}), ("cumsum", (X,), {}), ("cumsum", (I,), {"axis": 0}),
    ("cumsum", (B,), {"axis": 0}),
    ("norm", (X[0, 0],), {}), ("norm", (X,), {"axis": -1}), ("norm", (X,), {"axis": 1, "keepdims": True}),
    ("norm", (X[0],), {}), ("norm", (X[0],), {"ord": "fro"}), ("norm", (X[0, 0],), {"ord": 1}),
    ("norm", (X,), {"axis": -1, "ord": np.inf}), ("norm", (X[0],), {"ord": 1}),
]


def _flat(value):
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _flat(v)]
    return [value]


@pytest.mark.parametrize("name,args,kwargs", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_op_matches_keras(name, args, kwargs):
    expected = getattr(kops, name)(*args, **kwargs)
    got = getattr(ops, name)(*args, **kwargs)
    assert isinstance(got, (list, tuple)) == isinstance(expected, (list, tuple))
    exp_list, got_list = _flat(expected), _flat(got)
    assert len(exp_list) == len(got_list)
    for e, g in zip(exp_list, got_list):
        e = kops.convert_to_numpy(e)
        assert isinstance(g, np.ndarray), type(g)
        assert g.dtype == e.dtype, (name, g.dtype, e.dtype)
        assert g.shape == e.shape, (name, g.shape, e.shape)
        if e.dtype.kind == "f":
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, e)


def test_shape_and_convert_to_numpy():
    assert ops.shape(X) == tuple(kops.shape(X)) == (2, 3, 4)
    got = ops.convert_to_numpy(X)
    assert got is not X and np.array_equal(got, kops.convert_to_numpy(kops.convert_to_tensor(X)))


def test_every_offered_name_is_a_keras_op_and_tested():
    tested = {c[0] for c in CASES} | {"shape", "convert_to_numpy"}
    for name in ops.OFFERED:
        assert hasattr(kops, name), name
        assert name in tested, f"{name} is offered but not tested"


def test_weights_are_operands():
    from unrolled.variables import Variable
    w = Variable(M, "w")
    np.testing.assert_allclose(ops.matmul(X, w), kops.convert_to_numpy(kops.matmul(X, M)),
                               rtol=1e-6)


def test_missing_name_says_so():
    with pytest.raises(AttributeError, match="unrolled.ops has no 'fft'.*matmul"):
        ops.fft
    import unrolled as k
    assert k.ops is unrolled.ops


def test_refusals():
    with pytest.raises(ValueError, match="both"):
        ops.where(B, X)
    with pytest.raises(ValueError, match="sparse"):
        ops.convert_to_tensor(X, sparse=True)
    for op in (ops, kops):                       # both refuse a norm over three axes
        with pytest.raises(ValueError, match="Invalid axis"):
            op.norm(X)
