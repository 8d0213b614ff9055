"""The seed notebook, with only its imports changed, run on unrolled and checked against Keras."""
import io
import re
from contextlib import redirect_stdout

import numpy as np
from keras_ref import keras

NOTEBOOK = '''
from unrolled.layers import Input, SimpleRNN, Dense, Flatten
from unrolled.models import Model
from unrolled.optimizers import SGD, Adam

import numpy as np

N = 1
T = 10
D = 3
K = 2
x = np.random.randn(N, T, D)

M = 5
i = Input(shape=(T, D))
out = SimpleRNN(M, activation="tanh")(i)
out = Dense(K)(out)
model = Model(i, out)
model.compile(loss="mse", optimizer=Adam(learning_rate=0.1))
model.summary()

prediction = model.predict(x)

a, b, c = model.layers[1].get_weights()
shapes = (a.shape, b.shape, c.shape)

Wx, Wh, bh = model.layers[1].get_weights()
Wo, bo = model.layers[2].get_weights()

h_last = np.zeros(M)
x = x[0]
y_hats = []

for t in range(T):
    h = np.tanh(x[t].dot(Wx) + h_last.dot(Wh) + bh)
    y = h.dot(Wo) + bo
    y_hats.append(y)

    h_last = h

print(y_hats[-1])
'''


def run_notebook():
    scope = {}
    buf = io.StringIO()
    with redirect_stdout(buf):
        exec(compile(NOTEBOOK, "seed-notebook", "exec"), scope)  # our own test code, not data
    return scope, buf.getvalue()


def test_notebook_runs_and_its_loop_reproduces_predict():
    scope, printed = run_notebook()
    pred = scope["prediction"]
    assert pred.dtype == np.float32 and pred.shape == (1, 2)
    assert scope["shapes"] == ((3, 5), (5, 5), (5,))
    np.testing.assert_allclose(scope["y_hats"][-1], pred[0], atol=1e-6)
    # The summary's content is Keras's (names get a _N suffix when earlier tests made layers).
    assert re.search(r"input_layer(_\d+)? \(InputLayer\)\s+│ \(None, 10, 3\)\s+│\s+0 │", printed)
    assert re.search(r"simple_rnn(_\d+)? \(SimpleRNN\)\s+│ \(None, 5\)\s+│\s+45 │", printed)
    assert re.search(r"dense(_\d+)? \(Dense\)\s+│ \(None, 2\)\s+│\s+12 │", printed)
    assert "Total params: 57 (228.00 B)" in printed
    assert "Trainable params: 57 (228.00 B)" in printed
    assert "Non-trainable params: 0 (0.00 B)" in printed


def test_notebook_model_matches_keras_with_the_same_weights():
    scope, _ = run_notebook()
    model = scope["model"]
    ki = keras.Input(shape=(10, 3))
    kmodel = keras.Model(ki, keras.layers.Dense(2)(keras.layers.SimpleRNN(5)(ki)))
    kmodel.set_weights(model.get_weights())
    x = np.random.default_rng(0).standard_normal((64, 10, 3))
    np.testing.assert_allclose(model.predict(x, verbose=0), kmodel.predict(x, verbose=0), atol=1e-6)
    # ... and the other way round: Keras's weights into ours.
    rng = np.random.default_rng(1)
    kmodel.set_weights([rng.standard_normal(w.shape) for w in kmodel.get_weights()])
    model.set_weights(kmodel.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), kmodel.predict(x, verbose=0), atol=1e-5)
