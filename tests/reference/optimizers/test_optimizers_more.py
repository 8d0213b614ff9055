"""Adadelta, Lion and Ftrl against real Keras 3: raw steps (weights and optimizer state),
a recurrent model's train steps and fit, an Embedding's sparse gradients, configs, files."""
import re
import zlib

import numpy as np
import pytest
from keras_ref import keras
from test_embedding_sparse_updates import assert_same, train_both

import unrolled
from unrolled import optimizers
from unrolled.models import load_model
from unrolled.optimizers import schedules
from unrolled.variables import Variable

SHAPES = [(3, 4), (4,), (2, 3, 2), (1,)]
KS = keras.optimizers.schedules

# (id, class name, keyword arguments: the same for Keras's class and ours)
CASES = [
    ("adadelta", "Adadelta", dict(learning_rate=1.0)),
    ("adadelta_default", "Adadelta", dict()),
    ("adadelta_args", "Adadelta", dict(learning_rate=0.5, rho=0.8, epsilon=1e-4,
                                       clipnorm=1.0)),
    ("adadelta_wd", "Adadelta", dict(learning_rate=0.5, weight_decay=0.1, clipvalue=0.5)),
    ("lion", "Lion", dict(learning_rate=0.01)),
    ("lion_args", "Lion", dict(learning_rate=0.02, beta_1=0.5, beta_2=0.9,
                               weight_decay=0.2)),
    ("lion_global_clipnorm", "Lion", dict(learning_rate=0.01, global_clipnorm=1.0)),
    ("ftrl", "Ftrl", dict(learning_rate=0.1)),
    ("ftrl_default", "Ftrl", dict()),
    ("ftrl_l1_l2", "Ftrl", dict(learning_rate=0.2, l1_regularization_strength=0.01,
                                l2_regularization_strength=0.05)),
    ("ftrl_all", "Ftrl", dict(learning_rate=0.2, learning_rate_power=-0.3,
                              initial_accumulator_value=0.5, l1_regularization_strength=0.002,
                              l2_regularization_strength=0.1,
                              l2_shrinkage_regularization_strength=0.05, beta=0.3,
                              clipnorm=2.0)),
    ("ftrl_power_zero", "Ftrl", dict(learning_rate=0.05, learning_rate_power=0.0,
                                     weight_decay=0.01)),
]
IDS = [c[0] for c in CASES]


def both(name, kwargs):
    return getattr(keras.optimizers, name)(**kwargs), getattr(optimizers, name)(**kwargs)


def run_steps(k_opt, o_opt, dtype="float32", steps=5, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    names = ["kernel", "bias", "recurrent_kernel", "gamma"]
    theirs = [keras.Variable(x.copy(), name=n, dtype=dtype) for x, n in zip(init, names)]
    ours = [Variable(x.copy(), name=n) for x, n in zip(init, names)]
    for _ in range(steps):
        grads = [(rng.normal(size=s) * 2).astype(dtype) for s in SHAPES]
        k_opt.apply_gradients(zip([g.copy() for g in grads], theirs))
        o_opt.apply_gradients(zip(grads, ours))
    return theirs, ours


@pytest.mark.parametrize("case, name, kwargs", CASES, ids=IDS)
def test_five_raw_steps_and_the_optimizer_state_equal_keras(case, name, kwargs):
    k_opt, o_opt = both(name, kwargs)
    theirs, ours = run_steps(k_opt, o_opt, seed=zlib.crc32(case.encode()))
    for k, o in zip(theirs, ours):
        assert o.value.dtype == np.float32
        np.testing.assert_allclose(o.value, k.numpy(), rtol=1e-5, atol=1e-6)
    assert o_opt.iterations == int(k_opt.iterations.numpy()) == 5
    assert [v.name for v in o_opt.variables] == [v.name for v in k_opt.variables]
    for k, o in zip(k_opt.variables, o_opt.variables):
        # (Ftrl's ``linear`` sums terms of ~1/lr: an entry can cancel to far below them,
        # so the absolute tolerance follows the array's scale, float32's rounding of it)
        want = k.numpy().astype(float)
        np.testing.assert_allclose(np.asarray(o.value, float), want, rtol=1e-5,
                                   atol=1e-6 * max(1.0, np.abs(want).max()), err_msg=k.name)


@pytest.mark.parametrize("name, kwargs", [
    ("Adadelta", dict(learning_rate=1.0, rho=0.8)),
    ("Lion", dict(learning_rate=0.01, beta_1=0.7)),
    ("Ftrl", dict(learning_rate=0.2, l1_regularization_strength=0.01, beta=0.2,
                  l2_shrinkage_regularization_strength=0.05)),
])
def test_float64_variables_equal_keras(name, kwargs):
    k_opt, o_opt = both(name, kwargs)
    theirs, ours = run_steps(k_opt, o_opt, dtype="float64", seed=4)
    for k, o in zip(theirs, ours):
        assert o.value.dtype == np.float64
        np.testing.assert_allclose(o.value, k.numpy(), rtol=1e-12, atol=1e-14)


def test_a_schedule_drives_them_as_in_keras():
    for name in ("Adadelta", "Lion", "Ftrl"):
        k_opt = getattr(keras.optimizers, name)(KS.ExponentialDecay(0.5, 2, 0.5))
        o_opt = getattr(optimizers, name)(schedules.ExponentialDecay(0.5, 2, 0.5))
        theirs, ours = run_steps(k_opt, o_opt, seed=9)
        for k, o in zip(theirs, ours):
            np.testing.assert_allclose(o.value, k.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


# ---- a recurrent model ----

def _recurrent(m):
    m.utils.set_random_seed(11) if m is keras else None
    inp = m.Input((5, 3))
    h = m.layers.LSTM(6, return_sequences=True)(inp)
    h = m.layers.GRU(4)(h)
    return m.Model(inp, m.layers.Dense(2)(h))


MODEL_CASES = [
    ("Adadelta", dict(learning_rate=1.0)),
    ("Lion", dict(learning_rate=0.01)),
    ("Ftrl", dict(learning_rate=0.5, l1_regularization_strength=0.001,
                  l2_regularization_strength=0.01)),
]


def _data(rng, n=24):
    return (rng.standard_normal((n, 5, 3)).astype("float32"),
            rng.standard_normal((n, 2)).astype("float32"))


@pytest.mark.parametrize("name, kwargs", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_five_train_steps_of_a_recurrent_model_equal_keras(name, kwargs, rng):
    theirs, ours = _recurrent(keras), _recurrent(unrolled)
    ours.set_weights(theirs.get_weights())
    k_opt, o_opt = both(name, kwargs)
    theirs.compile(k_opt, "mse")
    ours.compile(o_opt, "mse")
    x, y = _data(rng, 8)
    for step in range(5):
        xb, yb = x + 0.1 * step, y - 0.1 * step
        got, want = ours.train_on_batch(xb, yb), float(theirs.train_on_batch(xb, yb))
        assert got == pytest.approx(want, rel=1e-5), f"step {step + 1}"
    for w, a, b in zip(ours.weights, ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=w.path)


@pytest.mark.parametrize("name, kwargs", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_a_three_epoch_fit_equals_keras(name, kwargs, rng):
    theirs, ours = _recurrent(keras), _recurrent(unrolled)
    ours.set_weights(theirs.get_weights())
    k_opt, o_opt = both(name, kwargs)
    theirs.compile(k_opt, "mse", metrics=["mae"])
    ours.compile(o_opt, "mse", metrics=["mae"])
    x, y = _data(rng)
    kw = dict(epochs=3, batch_size=8, shuffle=False, verbose=0, validation_data=(x[:8], y[:8]))
    want = theirs.fit(x, y, **kw).history
    got = ours.fit(x, y, **kw).history
    assert set(got) == set(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=key)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-6)


# ---- an Embedding's sparse gradient, tokens repeated within a batch ----

@pytest.mark.parametrize("name, kwargs", [
    ("Adadelta", dict(learning_rate=1.0)),
    ("Adadelta", dict(learning_rate=2.0, rho=0.5, clipnorm=0.05)),
    ("Lion", dict(learning_rate=0.01)),
    ("Lion", dict(learning_rate=0.01, clipvalue=0.002)),
    ("Ftrl", dict(learning_rate=0.5)),
    ("Ftrl", dict(learning_rate=0.5, l1_regularization_strength=0.001,
                  l2_shrinkage_regularization_strength=0.01)),
    ("Ftrl", dict(learning_rate=0.5, global_clipnorm=0.05)),
], ids=lambda c: str(c))
def test_an_embedding_model_with_repeated_tokens_equals_keras(name, kwargs):
    assert_same(*train_both(name, kwargs))              # 5 steps, rel/abs 5e-5


def test_embedding_rule_differs_from_row_sums():
    """The rule is not a no-op: with repeated tokens, Adadelta's per-position squares give
    other numbers than the squares of the row sums (so the test above can fail)."""
    from unrolled.optimizers.sparse import IndexedSlices
    g = IndexedSlices([1, 1, 2], np.array([[1.0, -2.0], [3.0, 0.5], [2.0, 1.0]], "float32"),
                      (3, 2))
    results = []
    for grad in (g, g.dense()):
        var = Variable(np.zeros((3, 2), "float32"), "w")
        opt = optimizers.Adadelta(1.0)
        for _ in range(2):
            opt.apply([grad], [var])
        results.append(var.value.copy())
    assert not np.allclose(results[0][1], results[1][1], rtol=1e-3)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-6)   # no repeat: same


# ---- configs, names, files ----

def test_get_config_equals_keras_and_round_trips():
    for case, name, kwargs in CASES:
        k_opt, o_opt = both(name, {**kwargs, "name": "o"})
        assert o_opt.get_config() == k_opt.get_config(), case
        again = getattr(optimizers, name)(**k_opt.get_config())   # as compile_config does
        assert again.get_config() == k_opt.get_config(), case
    assert keras.optimizers.Adadelta().name.startswith("adadelta")   # Keras numbers them
    assert optimizers.Adadelta().name == "adadelta"
    assert optimizers.Lion().name == "lion" and optimizers.Ftrl().name == "ftrl"


def test_get_by_name_and_the_keras_namespace():
    for name in ("adadelta", "Adadelta", "lion", "Lion", "ftrl", "Ftrl"):
        assert type(optimizers.get(name)).__name__.lower() == name.lower()
    assert unrolled.optimizers.Lion is optimizers.Lion


def test_arguments_refused_like_keras():
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)
    for key, value in [("initial_accumulator_value", -0.1), ("learning_rate_power", 0.5),
                       ("l1_regularization_strength", -1.0),
                       ("l2_regularization_strength", -1.0),
                       ("l2_shrinkage_regularization_strength", -1.0)]:
        with pytest.raises(ValueError, match=key):
            keras.optimizers.Ftrl(**{key: value})
        with pytest.raises(ValueError, match=key):
            optimizers.Ftrl(**{key: value})
    for cls in (optimizers.Adadelta, optimizers.Lion, optimizers.Ftrl):
        with pytest.raises(ValueError, match="use_ema"):
            cls(use_ema=True)
        with pytest.raises(ValueError, match="gradient_accumulation_steps"):
            cls(gradient_accumulation_steps=2)
        with pytest.raises(ValueError, match="not recognized"):
            cls(momentum=0.5)


@pytest.mark.parametrize("name, kwargs", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_keras_files_carry_the_optimizer_state_both_ways(name, kwargs, rng, tmp_path):
    x, y = _data(rng, 16)
    theirs, ours = _recurrent(keras), _recurrent(unrolled)
    ours.set_weights(theirs.get_weights())
    k_opt, o_opt = both(name, kwargs)
    theirs.compile(k_opt, "mse")
    ours.compile(o_opt, "mse")
    kw = dict(epochs=2, batch_size=8, shuffle=False, verbose=0)
    theirs.fit(x, y, **kw)
    ours.fit(x, y, **kw)
    theirs.save(tmp_path / "k.keras")
    ours.save(tmp_path / "u.keras")
    from_keras = load_model(tmp_path / "k.keras")
    from_ours = keras.saving.load_model(tmp_path / "u.keras")
    assert type(from_keras.optimizer).__name__ == name == type(from_ours.optimizer).__name__
    assert from_keras.optimizer.get_config() == theirs.optimizer.get_config()
    assert from_keras.optimizer.iterations == 4 == int(from_ours.optimizer.iterations.numpy())
    for k, o in zip(theirs.optimizer.variables, from_keras.optimizer.variables):
        assert re.sub(r"_\d+$", "", o.name) == re.sub(r"_\d+$", "", k.name)
        np.testing.assert_allclose(o.value, k.numpy(), rtol=1e-5, atol=1e-6, err_msg=k.name)
    # both go on training as Keras does from the same file
    want = theirs.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(from_keras.fit(x, y, **kw).history["loss"], want, rtol=2e-5)
    want = from_ours.fit(x, y, **kw).history["loss"]
    np.testing.assert_allclose(ours.fit(x, y, **kw).history["loss"], want, rtol=2e-5)
