"""Fused optimizer updates against their NumPy twins (fastnn.reference).

Bound, elementwise, with tol = 1e-12 (float64) or 1e-6 (float32, ~8 ulp):
|a - a_ref| <= tol * (|a_ref| + rms(a_ref)) for the parameter and every state
array (the rms term covers cancellation, e.g. in v = mu v - lr g or p + v near
0, where FMA and the twin's separately rounded products differ). Run under every ISA path
the machine supports, with 1 and 2 threads, several steps in a row.
"""
import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core

SIZES = [1, 3, 7, 17, 31, 64, 1000, 70001]  # awkward: 1, primes, not multiples of 8/16, > grain




def tol(dtype):
    return 1e-12 if dtype == np.float64 else 1e-6


def close(a, b, dtype, scale=0.0):
    """|a - b| <= tol * (|b| + scale), elementwise."""
    t = tol(dtype)
    return np.all(np.abs(a.astype(np.float64) - b.astype(np.float64)) <= t * (np.abs(b.astype(np.float64)) + scale))


def rms(a):
    return float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))


def make(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(dtype)


OPTIMIZERS = {
    "sgd": dict(state=[], kw=dict(lr=0.05)),
    "sgd_wd": dict(state=[], kw=dict(lr=0.05, weight_decay=1e-2)),
    "momentum": dict(state=["velocity"], kw=dict(lr=0.05, momentum=0.9)),
    "nesterov": dict(state=["velocity"], kw=dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    "rmsprop": dict(state=["sq_avg"], kw=dict(lr=1e-3, rho=0.9, eps=1e-7)),
    "rmsprop_wd": dict(state=["sq_avg"], kw=dict(lr=1e-3, rho=0.8, eps=1e-6, weight_decay=1e-2)),
    "adagrad": dict(state=["accum"], kw=dict(lr=1e-2, eps=1e-7, weight_decay=1e-3)),
    "adam": dict(state=["m", "v"], kw=dict(lr=1e-3)),
    "adam_l2": dict(state=["m", "v"], kw=dict(lr=1e-3, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=1e-2)),
    "adamw": dict(state=["m", "v"], kw=dict(lr=1e-3, weight_decay=1e-2, decoupled=True)),
}


def call(mod, name, param, grad, state, kw, step):
    fn = {"sgd": mod.sgd_update, "sgd_wd": mod.sgd_update, "momentum": mod.sgd_update, "nesterov": mod.sgd_update,
          "rmsprop": mod.rmsprop_update, "rmsprop_wd": mod.rmsprop_update, "adagrad": mod.adagrad_update}.get(name)
    if name.startswith("adam"):
        return mod.adam_update(param, grad, *state, step=step, **kw)
    return fn(param, grad, *state, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_update_matches_twin_over_several_steps(isa_threads, name, dtype):
    spec = OPTIMIZERS[name]
    for n in SIZES:
        p_ref = make(n, dtype, 1)
        p = p_ref.copy()
        st_ref = [np.abs(make(n, dtype, 2)) * 0.1 if s in ("v", "sq_avg", "accum") else make(n, dtype, 2) * 0.1
                  for s in spec["state"]]
        st = [s.copy() for s in st_ref]
        for step in range(1, 5):
            g = make(n, dtype, 10 + step)
            assert call(ops, name, p, g, st, spec["kw"], step) is None
            call(ref, name, p_ref, g, st_ref, spec["kw"], step)
            assert close(p, p_ref, dtype, scale=rms(p_ref)), (name, n, step)
            for a, b in zip(st, st_ref):
                assert close(a, b, dtype, scale=rms(b)), (name, n, step)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_work_on_nd_views_of_one_flat_arena(dtype):
    arena = make(784 * 512 + 512 + 512 * 10 + 10, dtype)
    grads, m, v = make(arena.size, dtype, 3), np.zeros_like(arena), np.zeros_like(arena)
    views = [arena[:784 * 512].reshape(784, 512), arena[784 * 512:784 * 512 + 512]]
    expect = arena.copy()
    ref.adam_update(expect, grads, m.copy(), v.copy(), lr=1e-3, step=1)
    ops.adam_update(arena, grads, m, v, lr=1e-3, step=1)
    assert close(arena, expect, dtype, scale=1e-3)
    assert views[0].base is arena or views[0].base is arena.base  # views still see the update
    assert np.array_equal(views[0].ravel(), arena[:784 * 512])
    # a 2-D view updated on its own
    w, gw = views[0], grads[:784 * 512].reshape(784, 512)
    mw, vw = np.zeros_like(w), np.zeros_like(w)
    w_ref = w.copy()
    ref.sgd_update(w_ref, gw, None, lr=0.1)
    ops.sgd_update(w, gw, lr=0.1)
    assert close(w, w_ref, dtype, scale=0.1)


@pytest.mark.parametrize("threads", [1, 2])
def test_adam_is_bitwise_reproducible_for_a_fixed_thread_count(threads):
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(threads)
    try:
        results = []
        for _ in range(2):
            p, g = make(300_001, np.float32, 1), make(300_001, np.float32, 2)
            m, v = np.zeros_like(p), np.zeros_like(p)
            for step in range(1, 4):
                ops.adam_update(p, g, m, v, lr=1e-3, step=step, weight_decay=1e-4)
            results.append((p, m, v))
        for a, b in zip(*results):
            assert np.array_equal(a.view(np.uint32), b.view(np.uint32))
    finally:
        fastnn.set_num_threads(old)


def test_adam_does_not_depend_on_thread_count():
    old = fastnn.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            fastnn.set_num_threads(threads)
            p, g = make(200_003, np.float32, 1), make(200_003, np.float32, 2)
            m, v = np.zeros_like(p), np.zeros_like(p)
            ops.adam_update(p, g, m, v, lr=1e-3, step=1)
            out.append(p)
    finally:
        fastnn.set_num_threads(old)
    assert np.array_equal(out[0], out[1])


def test_grad_may_be_non_contiguous():
    p = make(10, np.float64)
    g2 = make(20, np.float64, 5)
    expect = p.copy()
    ref.sgd_update(expect, g2[::2].copy(), lr=0.1)
    ops.sgd_update(p, g2[::2], lr=0.1)
    assert close(p, expect, np.float64, 0.1)


def test_empty_arrays_are_a_no_op():
    p = np.zeros(0, np.float32)
    ops.adam_update(p, p.copy(), p.copy(), p.copy(), lr=1e-3, step=1)


# ---------------------------------------------------------------- bad inputs


def fresh(n=8, dtype=np.float32):
    return make(n, dtype), make(n, dtype, 1), np.zeros(n, dtype), np.zeros(n, dtype)


def assert_untouched(before, arrays):
    for a, b in zip(before, arrays):
        assert np.array_equal(a, b)


BAD_ADAM = [
    (dict(lr=-1e-3), ValueError, "lr"),
    (dict(eps=0.0), ValueError, "eps"),
    (dict(eps=-1.0), ValueError, "eps"),
    (dict(beta1=1.0), ValueError, "beta1"),
    (dict(beta2=-0.1), ValueError, "beta2"),
    (dict(step=0), ValueError, "step"),
    (dict(step=1.5), TypeError, "step"),
    (dict(lr=float("nan")), ValueError, "lr"),
    (dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (dict(lr="0.1"), TypeError, "lr"),
]


@pytest.mark.parametrize("bad,exc,name", BAD_ADAM, ids=[f"{b[2]}={list(b[0].values())[0]}" for b in BAD_ADAM])
def test_adam_rejects_bad_hyperparameters_and_leaves_arrays_untouched(bad, exc, name):
    p, g, m, v = fresh()
    before = [p.copy(), m.copy(), v.copy()]
    kw = dict(lr=1e-3, step=1)
    kw.update(bad)
    with pytest.raises(exc, match=name):
        ops.adam_update(p, g, m, v, **kw)
    assert_untouched(before, [p, m, v])


def test_mismatched_shapes_and_dtypes_name_the_argument():
    p, g, m, v = fresh()
    with pytest.raises(ValueError, match=r"grad: expected shape \(8,\)"):
        ops.adam_update(p, g[:7], m, v, lr=1e-3, step=1)
    with pytest.raises(ValueError, match="v: expected shape"):
        ops.adam_update(p, g, m, v[:7], lr=1e-3, step=1)
    with pytest.raises(TypeError, match="m: expected dtype float32"):
        ops.adam_update(p, g, m.astype(np.float64), v, lr=1e-3, step=1)
    with pytest.raises(TypeError, match="grad: expected dtype float32"):
        ops.adam_update(p, g.astype(np.float64), m, v, lr=1e-3, step=1)
    with pytest.raises(TypeError, match="param"):
        ops.adam_update(list(p), g, m, v, lr=1e-3, step=1)
    with pytest.raises(TypeError, match="param: expected dtype"):
        ops.sgd_update(p.astype(np.int32), g, lr=0.1)


def test_state_must_be_writeable_and_contiguous():
    p, g, m, v = fresh(16)
    ro = m.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="m: expected a writeable"):
        ops.adam_update(p, g, ro, v, lr=1e-3, step=1)
    with pytest.raises(ValueError, match="param: expected a C-contiguous"):
        ops.sgd_update(make(32, np.float32)[::2], g, lr=0.1)
    with pytest.raises(ValueError, match="velocity: expected a C-contiguous"):
        ops.sgd_update(p, g, make(32, np.float32)[::2], lr=0.1, momentum=0.9)


def test_sgd_momentum_needs_velocity_and_valid_momentum():
    p, g, vel, _ = fresh()
    with pytest.raises(ValueError, match="velocity"):
        ops.sgd_update(p, g, lr=0.1, momentum=0.9)
    for bad in (1.0, -0.5):
        with pytest.raises(ValueError, match="momentum"):
            ops.sgd_update(p, g, vel, lr=0.1, momentum=bad)
    with pytest.raises(ValueError, match="rho"):
        ops.rmsprop_update(p, g, vel, lr=0.1, rho=1.0)
    with pytest.raises(ValueError, match="eps"):
        ops.adagrad_update(p, g, vel, lr=0.1, eps=0.0)


def test_core_rejects_bad_sizes_when_called_directly():
    p, g, m, v = fresh()
    with pytest.raises(ValueError, match="grad"):
        _core.adam_update(p, g[:3], m, v, 1e-3, 0.9, 0.999, 1e-7, 1, 0.0, False)
    with pytest.raises(ValueError, match="step"):
        _core.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-7, 0, 0.0, False)
    with pytest.raises(ValueError, match="lr"):
        _core.sgd_update(p, g, None, -1.0, 0.0, False, 0.0)
    with pytest.raises(ValueError, match="velocity"):
        _core.sgd_update(p, g, None, 0.1, 0.9, False, 0.0)
    with pytest.raises(TypeError, match="m"):
        _core.adam_update(p, g, m.astype(np.float64), v, 1e-3, 0.9, 0.999, 1e-7, 1, 0.0, False)


# ---------------------------------------------------------------- denormals


@pytest.fixture
def flush_setting():
    old = _core.get_flush_denormals()
    yield
    _core.set_flush_denormals(old)


@pytest.mark.parametrize("threads", [1, 2])
def test_user_mxcsr_is_unchanged_after_a_call_in_every_thread(threads, flush_setting):
    _core.set_flush_denormals(True)
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(threads)
    try:
        before_main = _core._testing.mxcsr_of_threads(1)[0]
        before_team = _core._testing.mxcsr_of_threads(threads)
        p, g = make(500_000, np.float32), make(500_000, np.float32, 1)
        m, v = np.zeros_like(p), np.zeros_like(p)
        ops.adam_update(p, g, m, v, lr=1e-3, step=1)
        ops.sgd_update(p, g, m, lr=1e-3, momentum=0.5)
        assert _core._testing.mxcsr_of_threads(1)[0] == before_main
        assert _core._testing.mxcsr_of_threads(threads) == before_team
        if before_main:  # x86: neither FTZ (bit 15) nor DAZ (bit 6) left set
            assert before_main & 0x8040 == 0
    finally:
        fastnn.set_num_threads(old)


def test_denormal_first_moments_are_flushed_inside_the_kernel_only(flush_setting):
    if not _core._testing.mxcsr_of_threads(1)[0]:
        pytest.skip("no MXCSR on this platform")
    tiny = np.full(37, 1e-39, np.float32)  # denormal float32
    p, g = np.ones(37, np.float32), np.zeros(37, np.float32)
    _core.set_flush_denormals(True)
    m, v = tiny.copy(), np.zeros(37, np.float32)
    ops.adam_update(p, g, m, v, lr=1e-3, step=1)
    assert np.all(m == 0)  # DAZ: the denormal input reads as 0
    assert np.all(tiny * np.float32(0.5) != 0)  # the caller still computes with denormals
    _core.set_flush_denormals(False)
    m, v = tiny.copy(), np.zeros(37, np.float32)
    m_ref, v_ref, p_ref = tiny.copy(), np.zeros(37, np.float32), np.ones(37, np.float32)
    ops.adam_update(p, g, m, v, lr=1e-3, step=1)
    ref.adam_update(p_ref, g, m_ref, v_ref, lr=1e-3, step=1)
    assert np.array_equal(m, m_ref) and np.all(m > 0)
