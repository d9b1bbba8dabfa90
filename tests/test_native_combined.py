"""The native step's newer cases together (x-needing Dense activations, binary cross-entropy,
weight regularizers, batch hooks under steps_per_execution): one model with all of them
trains natively, every step, bitwise as the Python step (weights, optimizer slots, history,
each hook call)."""
import numpy as np
import pytest

import fastnn
from fastnn import native_step
from fastnn.layers import BatchNormalization, Dense, Dropout

from helpers import count_native_steps


class Hooks(fastnn.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_batch_begin(self, batch, logs=None):
        self.events.append(("begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("end", batch, dict(logs)))


def _fit(monkeypatch, native, dtype, n):
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    monkeypatch.setattr(native_step, "CHUNK_ROWS", 48)  # several calls per execution too
    count = count_native_steps(monkeypatch)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((203, 9)).astype(dtype)
    y = (x[:, :2].sum(axis=1) > 0).astype(np.int64)  # (m,) integer labels, as Keras users pass them
    fastnn.utils.set_random_seed(11)
    m = fastnn.Sequential([
        Dense(24, activation="gelu", kernel_regularizer=fastnn.regularizers.L2(1e-3), input_dim=9),
        Dropout(0.2, seed=3), BatchNormalization(),
        Dense(16, activation="swish", bias_regularizer=fastnn.regularizers.L1(1e-3)),
        Dense(1, activation="sigmoid")], dtype=dtype)
    m.compile(fastnn.optimizers.AdamW(3e-3, weight_decay=1e-3), "binary_crossentropy", metrics=["accuracy"],
              regularizer=fastnn.regularizers.L1L2(1e-5, 1e-4), steps_per_execution=n)
    hooks = Hooks()
    h = m.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[hooks] if n > 1 else [], seed=2)
    state = [w.copy() for w in m.get_weights()] + [a.copy() for a in m.optimizer.state.values()]
    return state, h.history, hooks.events, count["n"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 5])
def test_all_together_native_and_bitwise(monkeypatch, threads, dtype, n):
    nat = _fit(monkeypatch, True, dtype, n)
    ref = _fit(monkeypatch, False, dtype, n)
    assert nat[3] == 2 * 13 and ref[3] == 0  # 203 rows: 12 full batches of 16 and one of 11, each epoch
    for a, b in zip(nat[0], ref[0]):
        np.testing.assert_array_equal(a, b)
    assert nat[1] == ref[1] and "data_loss" in nat[1]
    assert nat[2] == ref[2]
    if n > 1:
        assert [e[:2] for e in nat[2][:4]] == [("begin", 0), ("end", 4), ("begin", 5), ("end", 9)]
