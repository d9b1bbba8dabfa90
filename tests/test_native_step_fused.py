"""The native step applies a Dense layer's activation gradient in the epilogue of the dx
product of the Dense layer above it (csrc/fastnn/step/step.cpp: act_grad_fusable). The
Python step makes a separate pass; the two must give the same bits, for every activation
the native step takes, on layers wide enough for every GEMM path (blocked, swapped small m,
narrow), float32 and float64, 1 and 2 threads."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import optimizers as O
from helpers import count_native_steps

ACTS = ["relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh"]


def _run(monkeypatch, native, act, dtype, widths, batch_size):
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    count = count_native_steps(monkeypatch)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 40)).astype(dtype)
    y = rng.integers(0, 5, 150)
    init = fastnn.initializers.GlorotUniform
    model = fastnn.Sequential(
        [L.Input((40,))] + [L.Dense(w, activation=act, kernel_initializer=init(seed=k)) for k, w in enumerate(widths)]
        + [L.Dense(5, activation="softmax", kernel_initializer=init(seed=99))], dtype=dtype)
    model.compile(O.Adam(1e-2), "sparse_categorical_crossentropy")
    h = model.fit(x, y, batch_size=batch_size, epochs=2, verbose=0, seed=1)
    return model.arena.params.copy(), model.arena.grads.copy(), h.history, count["n"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("widths, batch_size", [((160, 96, 72), 64), ((24, 12, 9), 7), ((300, 17), 150)])
def test_fused_activation_gradient_same_bits(monkeypatch, threads, dtype, act, widths, batch_size):
    ref = _run(monkeypatch, False, act, dtype, widths, batch_size)
    nat = _run(monkeypatch, True, act, dtype, widths, batch_size)
    np.testing.assert_array_equal(nat[0], ref[0])
    np.testing.assert_array_equal(nat[1], ref[1])
    assert nat[2] == ref[2]
    assert ref[3] == 0 and nat[3] == 2 * -(-150 // batch_size)  # every step native
