"""BatchNorm's row path (128 rows or more, csrc/fastnn/norm/norm_rows_impl.h: threads
split the rows, per-part sums added in part order): parity with the NumPy twins under
every ISA path and thread count, bitwise independence of the thread count, in-place
outputs, NaN isolation, shifted statistics, a float64 directional gradient check, and
the native training step bitwise equal to the Python step.

The shapes below cover, beyond L2, narrow rows (streamed one at a time) and wide ones
(groups of 4), in L2 both in groups of 4; feature counts off the SIMD widths; parts of
unequal size; the fewest rows of the row path (128, 2 parts) and the most rows of the
column path (127) with as many features as fit 4 MiB.
"""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import ops, reference as ref

from helpers import count_native_steps
from test_norm import TOL, make_inputs, rel_err

SHAPES = {np.float32: [(1031, 1021), (8200, 131), (4099, 257), (128, 77), (300, 517)],
          np.float64: [(600, 900), (2050, 263), (131, 35)]}
CASES = [(dt, s) for dt, shapes in SHAPES.items() for s in shapes]
COLUMN_PATH = (127, 8300)  # 4.2 MB of float32 in fewer than 128 rows


def run_both(x, g, b, rm, rv, dy):
    y, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv, momentum=0.9, eps=1e-3)
    return (y, mean, invstd, rm, rv) + ops.batchnorm_backward(dy, x, g, mean, invstd)


@pytest.mark.parametrize("dtype, shape", CASES + [(np.float32, COLUMN_PATH)])
def test_forward_and_backward_match_twins(isa_threads, dtype, shape):
    x, g, b, rm, rv = make_inputs(*shape, dtype)
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    rm2, rv2 = rm.copy(), rv.copy()
    got = run_both(x, g, b, rm, rv, dy)
    want = ref.batchnorm_forward(x, g, b, rm2, rv2, momentum=0.9, eps=1e-3)
    want = want + (rm2, rv2) + ref.batchnorm_backward(dy, x, g, want[1], want[2])
    for name, a, w in zip(("y", "mean", "invstd", "rm", "rv", "dx", "dgamma", "dbeta"), got, want):
        assert a.dtype == dtype
        assert rel_err(a, w) <= TOL[dtype], name


@pytest.mark.parametrize("dtype, shape", CASES)
def test_results_do_not_depend_on_thread_count(dtype, shape):
    x, g, b, rm, rv = make_inputs(*shape, dtype)
    dy = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    old = fastnn.get_num_threads()
    try:
        outs = []
        for nt in (1, 2, 3, 7):
            fastnn.set_num_threads(nt)
            outs.append(run_both(x, g, b, rm.copy(), rv.copy(), dy))
    finally:
        fastnn.set_num_threads(old)
    for other in outs[1:]:
        for a, b2 in zip(outs[0], other):
            np.testing.assert_array_equal(a, b2)


def test_outputs_in_place_over_their_inputs(threads):
    x, g, b, rm, rv = make_inputs(1030, 1020, np.float32)
    dy = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    want = run_both(x, g, b, rm.copy(), rv.copy(), dy)
    xin, dyin = x.copy(), dy.copy()
    y, mean, invstd = ops.batchnorm_forward(xin, g, b, rm.copy(), rv.copy(), momentum=0.9, eps=1e-3, out=xin)
    assert y is xin
    np.testing.assert_array_equal(y, want[0])
    dx = ops.batchnorm_backward(dyin, x, g, mean, invstd, out=dyin)[0]
    assert dx is dyin
    np.testing.assert_array_equal(dx, want[5])


def test_nan_in_a_feature_poisons_only_that_feature():
    x, g, b, rm, rv = make_inputs(1030, 1020, np.float32)
    x[700, 5] = np.nan  # in a later part than the first
    y, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv)
    assert np.isnan(y[:, 5]).all() and np.isnan(mean[5]) and np.isnan(invstd[5]) and np.isnan(rm[5])
    assert np.isfinite(np.delete(y, 5, axis=1)).all() and np.isfinite(np.delete(rv, 5)).all()


def test_float64_directional_gradient_check():
    # L = sum(w * y(x, gamma, beta)); along a random direction v of each argument,
    # (L(a + h v) - L(a - h v)) / 2h must equal <grad, v>
    m, n = 600, 900
    x, g, b, rm, rv = make_inputs(m, n, np.float64, seed=4)
    rng = np.random.default_rng(5)
    w = rng.standard_normal((m, n))

    def loss(x_, g_, b_):
        return float((w * ops.batchnorm_forward(x_, g_, b_, rm.copy(), rv.copy(), eps=1e-3)[0]).sum())

    _, mean, invstd = ops.batchnorm_forward(x, g, b, rm.copy(), rv.copy(), eps=1e-3)
    grads = ops.batchnorm_backward(w, x, g, mean, invstd)
    h = 1e-5
    for which, grad in enumerate(grads):
        v = rng.standard_normal(grad.shape)
        args_p, args_m = [x, g, b], [x, g, b]
        args_p[which] = args_p[which] + h * v
        args_m[which] = args_m[which] - h * v
        num = (loss(*args_p) - loss(*args_m)) / (2 * h)
        ana = float((grad * v).sum())
        assert abs(num - ana) / max(abs(ana), 1e-300) < 1e-7, which


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_step_equals_python_step_on_the_row_path(monkeypatch, threads, dtype):
    # BatchNormalization over (512, 2048) float32 / (512, 1024) float64: 4 MiB, the row path
    units = 2048 if dtype == np.float32 else 1024
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1024, 6)).astype(dtype)
    y = rng.integers(0, 3, 1024)
    states, count = [], count_native_steps(monkeypatch)
    for native in ("0", "1"):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", native)
        init = fastnn.initializers.GlorotUniform
        model = fastnn.Sequential([L.Input((6,)), L.Dense(units, kernel_initializer=init(seed=1)),
                                   L.BatchNormalization(), L.Activation("relu"),
                                   L.Dense(3, activation="softmax", kernel_initializer=init(seed=2))], dtype=dtype)
        model.compile(fastnn.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
        h = model.fit(x, y, batch_size=512, epochs=1, verbose=0, seed=3)
        bn = model.layers[1]
        states.append([model.arena.params.copy(), model.arena.grads.copy(), h.history["loss"]]
                      + [np.array(v) for v in bn.vars.values()])
    assert count["n"] == 2  # both steps of the second run were native
    for a, b in zip(*states):
        np.testing.assert_array_equal(a, b)
