"""The model that ``unrolled explain --demo`` explains: an LSTM that learns a sine wave.

Small enough to follow by hand (8 units, 20 steps) and trained long enough (a second or
two) that its gates do something visible.
"""
import numpy as np


def sine_windows(n=160, steps=20, seed=0):
    """Windows of a noisy sine: x ``(n, steps, 1)``, y the value after each window ``(n, 1)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n + steps) * 0.3
    series = np.sin(t) + 0.05 * rng.standard_normal(t.shape)
    x = np.stack([series[i:i + steps] for i in range(n)])[..., None].astype("float32")
    y = series[steps:steps + n, None].astype("float32")
    return x, y


def demo_model(seed=0, epochs=15):
    """``(model, x, y, history)``: Input(20, 1) -> LSTM(8) -> Dense(1), fitted on sine windows."""
    from ..layers import LSTM, Dense, Input
    from ..models import Model
    from ..optimizers import Adam
    from ..utils import set_random_seed

    set_random_seed(seed)
    x, y = sine_windows(seed=seed)
    i = Input(shape=x.shape[1:], name="window")
    h = LSTM(8, name="lstm")(i)
    model = Model(i, Dense(1, name="next_value")(h), name="sine_lstm")
    model.compile(loss="mse", optimizer=Adam(learning_rate=0.02))
    history = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, shuffle=False)
    return model, x, y, history
