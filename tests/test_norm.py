"""BatchNorm forward (training / inference) and backward: parity with the NumPy
twins under every ISA path and thread count, finite differences, the running
statistics by hand, and the errors of the ops contract.

Parity is measured normwise: max|fast - twin| / max|twin| <= 1e-12 in float64,
<= 1e-5 in float32 (measured: about 1e-6).
"""
import numpy as np
import pytest

import fastnn
from fastnn import _core, ops, reference as ref

# 1, primes, sizes off the SIMD widths; (131, 521) is large enough to use 2 threads
SHAPES = [(2, 1), (3, 7), (17, 31), (64, 33), (5, 100), (131, 521)]
TOL = {np.float64: 1e-12, np.float32: 1e-5}






def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.abs(b).max() if b.size else 0.0
    return np.abs(a - b).max() / scale if scale > 0 else np.abs(a - b).max()


def make_inputs(m, n, dtype, seed=0):
    rng = np.random.default_rng(seed + 7 * m + n)
    x = (rng.standard_normal((m, n)) * 2 + 3).astype(dtype)
    gamma = rng.standard_normal(n).astype(dtype)
    beta = rng.standard_normal(n).astype(dtype)
    rmean = rng.standard_normal(n).astype(dtype)
    rvar = (rng.random(n) + 0.5).astype(dtype)
    return x, gamma, beta, rmean, rvar


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_training_matches_twin(isa, threads, dtype, shape):
    x, g, b, rm, rv = make_inputs(*shape, dtype)
    rm2, rv2 = rm.copy(), rv.copy()
    got = ops.batchnorm_forward(x, g, b, rm, rv, momentum=0.9, eps=1e-3)
    want = ref.batchnorm_forward(x, g, b, rm2, rv2, momentum=0.9, eps=1e-3)
    for a, w in zip(got + (rm, rv), want + (rm2, rv2)):
        assert a.dtype == dtype
        assert rel_err(a, w) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES + [(1, 9)])
def test_forward_inference_matches_twin(isa, threads, dtype, shape):
    x, g, b, rm, rv = make_inputs(*shape, dtype)
    rm0, rv0 = rm.copy(), rv.copy()
    got = ops.batchnorm_forward(x, g, b, rm, rv, training=False)
    want = ref.batchnorm_forward(x, g, b, rm.copy(), rv.copy(), training=False)
    for a, w in zip(got, want):
        assert rel_err(a, w) <= TOL[dtype]
    np.testing.assert_array_equal(rm, rm0)  # inference leaves the running statistics alone
    np.testing.assert_array_equal(rv, rv0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_twin(isa, threads, dtype, shape):
    x, g, b, rm, rv = make_inputs(*shape, dtype)
    _, mean, invstd = ref.batchnorm_forward(x, g, b, rm, rv)
    dy = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    got = ops.batchnorm_backward(dy, x, g, mean, invstd)
    want = ref.batchnorm_backward(dy, x, g, mean, invstd)
    for a, w in zip(got, want):
        assert a.dtype == dtype
        assert rel_err(a, w) <= TOL[dtype] * (10 if shape[0] == 2 else 1)  # m=2: dx is 0 up to rounding


def test_results_do_not_depend_on_thread_count():
    x, g, b, rm, rv = make_inputs(300, 517, np.float32)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    outs = []
    old = fastnn.get_num_threads()
    for nt in (1, 2):
        fastnn.set_num_threads(nt)
        y, mean, invstd = ops.batchnorm_forward(x, g, b, rm.copy(), rv.copy())
        outs.append((y, mean, invstd) + ops.batchnorm_backward(dy, x, g, mean, invstd))
    fastnn.set_num_threads(old)
    for a, b2 in zip(*outs):
        np.testing.assert_array_equal(a, b2)


def test_backward_matches_centered_finite_differences(isa):
    # L = sum(w * y(x, gamma, beta)): dL/dy = w; check dL/dx, dL/dgamma, dL/dbeta.
    m, n = 5, 3
    x, g, b, rm, rv = make_inputs(m, n, np.float64, seed=3)
    w = np.random.default_rng(4).standard_normal((m, n))

    def loss(x_, g_, b_):
        y, _, _ = ops.batchnorm_forward(x_, g_, b_, rm.copy(), rv.copy(), eps=1e-3)
        return float((w * y).sum())

    _, mean, invstd = ops.batchnorm_forward(x, g, b, rm.copy(), rv.copy(), eps=1e-3)
    dx, dg, db = ops.batchnorm_backward(w, x, g, mean, invstd)
    h = 1e-5
    for arr, grad, which in ((x, dx, 0), (g, dg, 1), (b, db, 2)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args_p = [x.copy(), g.copy(), b.copy()]
            args_m = [x.copy(), g.copy(), b.copy()]
            args_p[which][idx] += h
            args_m[which][idx] -= h
            num[idx] = (loss(*args_p) - loss(*args_m)) / (2 * h)
        assert rel_err(grad, num) < 1e-7, which


def test_running_statistics_follow_hand_computation_over_batches():
    rng = np.random.default_rng(5)
    n, momentum = 4, 0.9
    rmean, rvar = np.zeros(n), np.ones(n)
    want_mean, want_var = [0.0] * n, [1.0] * n
    for m in (3, 8, 5):
        x = rng.standard_normal((m, n)) * 3 + 1
        ops.batchnorm_forward(x, np.ones(n), np.zeros(n), rmean, rvar, momentum=momentum)
        for j in range(n):
            col = [float(v) for v in x[:, j]]
            mu = sum(col) / m
            unbiased = sum((v - mu) ** 2 for v in col) / (m - 1)
            want_mean[j] = momentum * want_mean[j] + (1 - momentum) * mu
            want_var[j] = momentum * want_var[j] + (1 - momentum) * unbiased
    np.testing.assert_allclose(rmean, want_mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(rvar, want_var, rtol=1e-13)


def test_momentum_one_keeps_and_zero_replaces_running_statistics():
    x, g, b, rm, rv = make_inputs(6, 5, np.float64)
    rm1, rv1 = rm.copy(), rv.copy()
    ops.batchnorm_forward(x, g, b, rm1, rv1, momentum=1.0)
    np.testing.assert_array_equal(rm1, rm)
    np.testing.assert_array_equal(rv1, rv)
    ops.batchnorm_forward(x, g, b, rm1, rv1, momentum=0.0)
    np.testing.assert_allclose(rm1, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(rv1, x.var(0, ddof=1), rtol=1e-13)


def test_inference_uses_running_statistics():
    x, g, b, rm, rv = make_inputs(4, 6, np.float64)
    y, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv, eps=1e-3, training=False)
    np.testing.assert_array_equal(mean, rm)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(rv + 1e-3), rtol=1e-15)
    np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-3) * g + b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(100, 16), (512, 16), (4096, 300)])  # column path, row path in L2, beyond
def test_shifted_data_keeps_variance_accurate_far_from_zero(shape):
    # mean 1e4, std 1: a naive E[x^2] - E[x]^2 in float32 would lose everything
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) + 1e4).astype(np.float32)
    n = x.shape[1]
    _, mean, invstd = ops.batchnorm_forward(x, np.ones(n, np.float32), np.zeros(n, np.float32),
                                            np.zeros(n, np.float32), np.ones(n, np.float32), eps=1e-6)
    var = x.astype(np.float64).var(0)
    np.testing.assert_allclose(1 / invstd.astype(np.float64) ** 2, var + 1e-6, rtol=1e-3)


def test_batch_of_one_in_training_is_an_error():
    x, g, b, rm, rv = make_inputs(1, 5, np.float32)
    with pytest.raises(ValueError, match="at least 2 rows"):
        ops.batchnorm_forward(x, g, b, rm, rv)
    ops.batchnorm_forward(x, g, b, rm, rv, training=False)  # fine in inference


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": 0.0}, "eps"), ({"eps": 1e-50}, "eps"), ({"eps": -1e-3}, "eps"), ({"eps": float("nan")}, "eps"),
    ({"momentum": 1.5}, "momentum"), ({"momentum": -0.1}, "momentum"), ({"momentum": float("inf")}, "momentum"),
])
def test_bad_hyperparameters_raise(kwargs, match):
    x, g, b, rm, rv = make_inputs(4, 5, np.float32)
    with pytest.raises(ValueError, match=match):
        ops.batchnorm_forward(x, g, b, rm, rv, **kwargs)


def test_mismatched_shapes_and_dtypes_raise():
    x, g, b, rm, rv = make_inputs(4, 5, np.float32)
    with pytest.raises(ValueError, match="gamma"):
        ops.batchnorm_forward(x, g[:4], b, rm, rv)
    with pytest.raises(ValueError, match="running_var"):
        ops.batchnorm_forward(x, g, b, rm, rv[:3])
    with pytest.raises(TypeError, match="beta"):
        ops.batchnorm_forward(x, g, b.astype(np.float64), rm, rv)
    with pytest.raises(ValueError, match="x"):
        ops.batchnorm_forward(x[0], g, b, rm, rv)
    with pytest.raises(ValueError, match="dy"):
        ops.batchnorm_backward(x[:3], x, g, rm, rv)
    with pytest.raises(ValueError, match="running_var"):
        ops.batchnorm_forward(x, g, b, rm, -rv, training=False)


def test_core_rejects_bad_sizes_without_crashing():
    x, g, b, rm, rv = make_inputs(4, 5, np.float32)
    y, mean, inv = np.empty_like(x), np.empty(5, np.float32), np.empty(5, np.float32)
    with pytest.raises(ValueError):
        _core.batchnorm_forward(x, g[:2], b, rm, rv, y, mean, inv, 0.9, 1e-3, True)
    with pytest.raises(ValueError):
        _core.batchnorm_forward(x, g, b, rm, rv, y[:2], mean, inv, 0.9, 1e-3, True)
    with pytest.raises(ValueError):
        _core.batchnorm_forward(x[:1], g, b, rm, rv, y[:1], mean, inv, 0.9, 1e-3, True)
    with pytest.raises(ValueError):
        _core.batchnorm_forward(x, g, b, rm, rv, y, mean, inv, 0.9, -1.0, True)
    with pytest.raises(ValueError):
        _core.batchnorm_backward(x, x, g, mean, inv[:3], y, mean, inv)
    with pytest.raises(TypeError):
        _core.batchnorm_backward(x.astype(np.float64), x, g, mean, inv, y, mean, inv)


def test_non_contiguous_inputs_are_copied():
    x, g, b, rm, rv = make_inputs(6, 10, np.float64)
    xt = np.asfortranarray(x)
    got = ops.batchnorm_forward(xt, g, b, rm.copy(), rv.copy())
    want = ref.batchnorm_forward(x, g, b, rm.copy(), rv.copy())
    assert rel_err(got[0], want[0]) <= 1e-12


def test_nan_in_a_feature_poisons_only_that_feature():
    x, g, b, rm, rv = make_inputs(8, 5, np.float64)
    x[3, 2] = np.nan
    y, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv)
    assert np.isnan(y[:, 2]).all() and np.isnan(mean[2]) and np.isnan(rm[2])
    assert np.isfinite(np.delete(y, 2, axis=1)).all()


def test_out_receives_y_and_dx_in_place(isa):
    x, g, b, rm, rv = make_inputs(9, 21, np.float64)
    want_y, mean, invstd = ref.batchnorm_forward(x, g, b, rm.copy(), rv.copy())
    dy = np.random.default_rng(8).standard_normal(x.shape)
    want_dx = ref.batchnorm_backward(dy, x, g, mean, invstd)[0]
    xin = x.copy()
    y, _, _ = ops.batchnorm_forward(xin, g, b, rm.copy(), rv.copy(), out=xin)
    assert y is xin and rel_err(y, want_y) <= 1e-12
    dx = ops.batchnorm_backward(dy, x, g, mean, invstd, out=dy)[0]
    assert dx is dy and rel_err(dx, want_dx) <= 1e-12
    with pytest.raises(ValueError, match="out"):
        ops.batchnorm_forward(x, g, b, rm, rv, out=np.empty((9, 20)))
    with pytest.raises(TypeError, match="out"):
        ops.batchnorm_backward(dy, x, g, mean, invstd, out=np.empty((9, 21), np.float32))


# ops' fast path calls _core directly and falls back to the full checks when _core
# rejects an argument: every bad argument must still get the documented error, the
# running statistics must be untouched, and what the full checks copy still works.
@pytest.mark.parametrize("case, exc, match", [
    ("gamma_list", TypeError, "gamma"), ("gamma_2d", ValueError, "gamma"), ("beta_int", TypeError, "beta"),
    ("rv_readonly", ValueError, "running_var"), ("rv_shares_rm", ValueError, "running_var"),
    ("rm_f64", TypeError, "running_mean"), ("out_f64", TypeError, "out"), ("out_shape", ValueError, "out"),
    ("x_int", TypeError, "x"), ("momentum_inference", ValueError, "momentum"), ("training_int", TypeError, "training"),
])
def test_forward_bad_argument_gets_its_message_and_changes_nothing(case, exc, match):
    x, g, b, rm, rv = make_inputs(6, 5, np.float32)
    kw = {}
    if case == "gamma_list":
        g = g.tolist()
    elif case == "gamma_2d":
        g = g.reshape(1, 5)
    elif case == "beta_int":
        b = b.astype(np.int32)
    elif case == "rv_readonly":
        rv.flags.writeable = False
    elif case == "rv_shares_rm":
        both = np.zeros(9, np.float32)
        rm, rv = both[:5], both[4:]
    elif case == "rm_f64":
        rm = rm.astype(np.float64)
    elif case == "out_f64":
        kw["out"] = np.empty(x.shape)
    elif case == "out_shape":
        kw["out"] = np.empty((5, 6), np.float32)
    elif case == "x_int":
        x = x.astype(np.int64)
    elif case == "momentum_inference":
        kw.update(momentum=2.0, training=False)
    elif case == "training_int":
        kw["training"] = 1
    before = (np.array(rm, copy=True), np.array(rv, copy=True))
    with pytest.raises(exc, match=match):
        ops.batchnorm_forward(x, g, b, rm, rv, **kw)
    np.testing.assert_array_equal(rm, before[0])
    np.testing.assert_array_equal(rv, before[1])


def test_backward_bad_arguments_get_their_messages():
    x, g, b, rm, rv = make_inputs(6, 5, np.float64)
    _, mean, invstd = ops.batchnorm_forward(x, g, b, rm, rv)
    dy = np.random.default_rng(3).standard_normal(x.shape)
    with pytest.raises(TypeError, match="gamma"):
        ops.batchnorm_backward(dy, x, g.tolist(), mean, invstd)
    with pytest.raises(ValueError, match="batch_invstd"):
        ops.batchnorm_backward(dy, x, g, mean, invstd.reshape(5, 1))
    with pytest.raises(TypeError, match="dy"):
        ops.batchnorm_backward(dy.astype(np.float32), x, g, mean, invstd)
    with pytest.raises(ValueError, match="out"):
        ops.batchnorm_backward(dy, x, g, mean, invstd, out=np.empty((6, 5), order="F")[:, :])
    # strided (non-contiguous) inputs are copied, not rejected
    want = ref.batchnorm_backward(dy, x, g, mean, invstd)
    got = ops.batchnorm_backward(np.asfortranarray(dy), x, g[::-1].copy()[::-1], mean, invstd)
    for a, w in zip(got, want):
        assert rel_err(a, w) <= 1e-12


def test_core_takes_arrays_as_they_are():
    x, g, b, rm, rv = make_inputs(4, 5, np.float32)
    y, mean, inv = np.empty_like(x), np.empty(5, np.float32), np.empty(5, np.float32)
    with pytest.raises(TypeError):  # a list is not converted
        _core.batchnorm_forward(x, g.tolist(), b, rm, rv, y, mean, inv, 0.9, 1e-3, True)
    with pytest.raises(ValueError):  # a (1, 5) gamma has 5 elements but the wrong shape
        _core.batchnorm_forward(x, g.reshape(1, 5), b, rm, rv, y, mean, inv, 0.9, 1e-3, True)
    with pytest.raises(ValueError):
        _core.batchnorm_forward(x, g, b, rm, rm, y, mean, inv, 0.9, 1e-3, True)


def test_out_tuple_receives_every_output():
    x, g, b, rm, rv = make_inputs(7, 13, np.float64)
    want = ref.batchnorm_forward(x, g, b, rm.copy(), rv.copy())
    bufs = (np.empty_like(x), np.empty(13), np.empty(13))
    got = ops.batchnorm_forward(x, g, b, rm.copy(), rv.copy(), out=bufs)
    assert all(a is w for a, w in zip(got, bufs))
    for a, w in zip(got, want):
        assert rel_err(a, w) <= 1e-12
    got = ops.batchnorm_forward(x, g, b, rm.copy(), rv.copy(), out=(None, bufs[1], None))  # None: allocated
    assert got[1] is bufs[1] and got[0] is not bufs[0] and rel_err(got[0], want[0]) <= 1e-12
    dy = np.random.default_rng(4).standard_normal(x.shape)
    want_b = ref.batchnorm_backward(dy, x, g, want[1], want[2])
    bbufs = (np.empty_like(x), np.empty(13), np.empty(13))
    got_b = ops.batchnorm_backward(dy, x, g, want[1], want[2], out=bbufs)
    assert all(a is w for a, w in zip(got_b, bbufs))
    for a, w in zip(got_b, want_b):
        assert rel_err(a, w) <= 1e-12


def test_bad_out_tuples_raise_naming_out():
    x, g, b, rm, rv = make_inputs(7, 13, np.float32)
    with pytest.raises(TypeError, match="out"):
        ops.batchnorm_forward(x, g, b, rm, rv, out=(np.empty_like(x),))
    with pytest.raises(TypeError, match="out"):
        ops.batchnorm_forward(x, g, b, rm, rv, out=[np.empty_like(x), None, None])
    with pytest.raises(ValueError, match=r"out\[1\]"):
        ops.batchnorm_forward(x, g, b, rm, rv, out=(None, np.empty(12, np.float32), None))
    shared = np.empty(13, np.float32)
    before = rm.copy()
    with pytest.raises(ValueError, match=r"out\[2\]"):
        ops.batchnorm_forward(x, g, b, rm, rv, out=(None, shared, shared))
    np.testing.assert_array_equal(rm, before)
    _, mean, inv = ops.batchnorm_forward(x, g, b, rm, rv)
    with pytest.raises(TypeError, match=r"out\[2\]"):
        ops.batchnorm_backward(x, x, g, mean, inv, out=(None, None, np.empty(13)))
    with pytest.raises(ValueError, match=r"out\[2\]"):
        ops.batchnorm_backward(x, x, g, mean, inv, out=(None, shared, shared))
