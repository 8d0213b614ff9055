"""One end-to-end run in PyTorch: ``python -m benchmarks.e2e_torch EXAMPLE EPOCHS [quick]``.

The model of ``unrolled.examples.EXAMPLE`` as a PyTorch user writes it: ``nn.RNN`` /
``nn.LSTM`` (+ ``nn.Embedding``) and ``nn.Linear``, PyTorch's own initializers, Adam at
the example's learning rate, and a plain loop (shuffled mini-batches of 32 by a
``randperm`` per epoch, ``zero_grad``, loss, ``backward``, ``step``; the epoch's loss is
the batch losses' mean weighted by batch size, as Keras reports it; validation in batches
of 32 under ``no_grad``). Dante's ``clipnorm=5.0`` is Keras's: each gradient clipped on its
own norm, so ``clip_grad_norm_`` per parameter. Data: ``e2e_data``, the examples' arrays
in plain NumPy. Prints the same JSON line as ``e2e_unrolled.py``. Default threads.
"""
import time

START = time.perf_counter()
import torch  # noqa: E402
from torch import nn  # noqa: E402

from . import e2e_data  # noqa: E402

IMPORTED = time.perf_counter()


class Forecaster(nn.Module):
    """Input (T, 1) -> RNN or LSTM(units) -> last state -> Linear(1)."""

    def __init__(self, cell, units):
        super().__init__()
        self.rnn, self.head = cell(1, units, batch_first=True), nn.Linear(units, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class CharModel(nn.Module):
    """ids (B, T) -> Embedding(V, 32) -> LSTM(units), every step -> Linear(V) logits."""

    def __init__(self, vocab, units):
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, units, batch_first=True)
        self.head = nn.Linear(units, vocab)

    def forward(self, x):
        out, _ = self.lstm(self.embed(x))
        return self.head(out)


def train(model, x, y, epochs, lr, loss_fn, val=None, clipnorm=None):
    """The loop; returns the last epoch's mean training loss (and validation loss)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n, val_loss = len(x), None
    for _ in range(epochs):
        model.train()
        perm, total = torch.randperm(n), 0.0
        for i in range(0, n, 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            if clipnorm is not None:
                for p in model.parameters():
                    nn.utils.clip_grad_norm_(p, clipnorm)
            opt.step()
            total += loss.item() * len(idx)
        if val is not None:
            model.eval()
            with torch.no_grad():
                val_loss = sum(loss_fn(model(val[0][i:i + 32]), val[1][i:i + 32]).item()
                               * len(val[0][i:i + 32]) for i in range(0, len(val[0]), 32))
            val_loss /= len(val[0])
    return total / n, val_loss


def predict(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).numpy()


def sine(epochs, quick, clock):
    arrays = e2e_data.sine(quick=quick)
    x, y, xt = map(torch.from_numpy, arrays)
    clock("data")
    losses = {}
    for name, cell in (("SimpleRNN", nn.RNN), ("LSTM", nn.LSTM)):
        torch.manual_seed(0)
        model = Forecaster(cell, 32)
        clock("build")
        losses[name], _ = train(model, x, y, epochs, 0.005, nn.functional.mse_loss)
        clock("fit")
        predict(model, xt)
        clock("predict")
    return losses, arrays


def co2(epochs, quick, clock):
    arrays = e2e_data.co2(quick=quick)
    x, y, xv, yv, xt = map(torch.from_numpy, arrays)
    clock("data")
    torch.manual_seed(0)
    model = Forecaster(nn.LSTM, 32)
    clock("build")
    loss, _ = train(model, x, y, epochs, 0.005, nn.functional.mse_loss, val=(xv, yv))
    clock("fit")
    predict(model, xt)
    clock("predict")
    return {"LSTM": loss}, arrays


def dante(epochs, quick, clock):
    *arrays, vocab = e2e_data.dante(quick=quick)
    x, y, xv, yv, xt = map(torch.from_numpy, arrays)
    clock("data")
    torch.manual_seed(0)
    model = CharModel(vocab, 128)

    def loss_fn(logits, target):
        return nn.functional.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))
    clock("build")
    loss, _ = train(model, x, y, epochs, 0.005, loss_fn, val=(xv, yv), clipnorm=5.0)
    clock("fit")
    predict(model, xt)
    clock("predict")
    return {"LSTM": loss}, arrays


def threads():
    return (f"torch {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} "
            "inter-op threads")


if __name__ == "__main__":
    e2e_data.main({"sine": sine, "co2": co2, "dante": dante}, threads, START, IMPORTED)
