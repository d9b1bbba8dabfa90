"""The fused losses weighted per sample (ops' ``sample_weight``, csrc/fastnn/loss: the kernels
both the Python step and the native step call for sample and class weights): parity with the
NumPy twins (fastnn._reference_weighted) under every ISA path and thread count, the gradient
bitwise the unweighted kernel's times the weights, the loss independent of the thread count,
and the errors of the ops contract.

Parity is normwise, as tests/test_loss.py: max|fast - twin| / max|twin| <= 1e-12 in float64
and <= 1e-5 in float32, for the loss and the gradient (the twin's row losses are float64).
"""
import numpy as np
import pytest

import fastnn
from fastnn import _core, ops
from fastnn import _reference_weighted as rw
from test_loss import TOL, logits_and_labels, rel_err

# 1, primes, sizes off the SIMD widths; (300, 257) uses 2 threads
SHAPES = [(1, 1), (3, 7), (17, 31), (64, 1), (33, 17), (300, 257)]
KINDS = ["ids", "probs", "bce", "mse"]


def _case(kind, shape, dtype, seed=0):
    """(op, logits or predictions, labels or targets, weights with zeros and a large one)."""
    z, ids, probs = logits_and_labels(*shape, dtype, seed)
    w = np.random.default_rng(seed + 7).random(shape[0]).astype(dtype) * 3
    w[::4] = 0
    w[-1] = 40.0
    if kind == "ids":
        return "softmax_cross_entropy", z, ids, w
    if kind == "probs":
        return "softmax_cross_entropy", z, probs, w
    t = (np.random.default_rng(seed + 3).random(shape) > 0.5).astype(dtype) if kind == "bce" else probs
    return ("binary_cross_entropy_with_logits" if kind == "bce" else "mean_squared_error"), z, t, w


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", KINDS)
def test_weighted_loss_matches_twin(isa, threads, kind, shape, dtype):
    op, z, t, w = _case(kind, shape, dtype)
    loss, grad = getattr(ops, op)(z, t, sample_weight=w)
    want_loss, want_grad = getattr(rw, op)(z, t, sample_weight=w)
    assert isinstance(loss, float) and grad.dtype == dtype and grad.shape == z.shape
    assert rel_err(loss, want_loss) <= TOL[dtype]
    assert rel_err(grad, want_grad) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", KINDS)
def test_weighted_gradient_is_the_unweighted_kernels_times_the_weights_bitwise(isa, threads, kind, dtype):
    # what the Python step computed before the weighted kernels (grad *= w[:, None]), bit for bit
    for shape in SHAPES:
        op, z, t, w = _case(kind, shape, dtype, seed=5)
        _, plain = getattr(ops, op)(z, t)
        _, grad = getattr(ops, op)(z, t, sample_weight=w)
        np.testing.assert_array_equal(grad, plain * w[:, None])


@pytest.mark.parametrize("kind", ["ids", "probs"])
def test_unit_weights_give_the_unweighted_cross_entropy_bitwise(kind):
    op, z, t, _ = _case(kind, (33, 17), np.float32)
    assert getattr(ops, op)(z, t, sample_weight=np.ones(33, np.float32))[0] == getattr(ops, op)(z, t)[0]


@pytest.mark.parametrize("shape", [(140000, 1), (50000, 3), (3000, 40)])  # split between threads at 2
@pytest.mark.parametrize("kind", KINDS)
def test_weighted_loss_does_not_depend_on_the_thread_count(kind, shape):
    if kind in ("ids", "probs") and shape[1] == 1:
        shape = (40000, 2)
    op, z, t, w = _case(kind, shape, np.float32)
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        one = getattr(ops, op)(z, t, sample_weight=w)
        fastnn.set_num_threads(2)
        two = getattr(ops, op)(z, t, sample_weight=w)
    finally:
        fastnn.set_num_threads(before)
    assert one[0] == two[0]
    np.testing.assert_array_equal(one[1], two[1])


def test_elementwise_rows_are_the_first_axis():
    rng = np.random.default_rng(0)
    w = rng.random(6)
    for shape in [(6,), (6, 1), (6, 2, 3)]:
        z, t = rng.normal(size=shape), rng.random(shape)
        for op in ["binary_cross_entropy_with_logits", "mean_squared_error"]:
            loss, grad = getattr(ops, op)(z, t, sample_weight=w)
            want_loss, want_grad = getattr(rw, op)(z, t, sample_weight=w)
            assert rel_err(loss, want_loss) <= 1e-12 and rel_err(grad, want_grad) <= 1e-12


def test_weights_are_converted_to_the_dtype_and_taken_as_a_column():
    op, z, t, w = _case("ids", (9, 5), np.float32)
    want = ops.softmax_cross_entropy(z, t, sample_weight=w)
    for other in (w.astype(np.float64), w[:, None], list(w.astype(np.float64))):
        got = ops.softmax_cross_entropy(z, t, sample_weight=other)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
    got = ops.softmax_cross_entropy(z, t, sample_weight=np.arange(9))  # integer weights
    np.testing.assert_array_equal(got[1], ops.softmax_cross_entropy(z, t)[1] * np.arange(9, dtype=np.float32)[:, None])


def test_nan_weight_gives_nan_as_the_twin():
    op, z, t, w = _case("mse", (5, 3), np.float64)
    w[2] = np.nan
    loss, grad = ops.mean_squared_error(z, t, sample_weight=w)
    assert np.isnan(loss) and np.isnan(grad[2]).all() and np.isfinite(np.delete(grad, 2, axis=0)).all()


@pytest.mark.parametrize("bad", ["length", "2-D", "complex", "strings"])
def test_ops_refuse_bad_weights_naming_them(bad):
    z, ids, _ = logits_and_labels(4, 3, np.float32)
    w = {"length": np.ones(5), "2-D": np.ones((4, 2)), "complex": np.ones(4, complex),
         "strings": np.array(["a"] * 4)}[bad]
    err = TypeError if bad in ("complex", "strings") else ValueError
    for op, t in (("softmax_cross_entropy", ids), ("mean_squared_error", z.copy())):
        with pytest.raises(err, match="sample_weight"):
            getattr(ops, op)(z, t, sample_weight=w)


def test_core_refuses_weights_of_another_dtype_size_or_overlapping_the_gradient():
    z, ids, probs = logits_and_labels(4, 3, np.float32)
    d = np.full((4, 3), 7.0, np.float32)
    with pytest.raises(TypeError, match="weights"):
        _core.softmax_cross_entropy_ids(z, ids, d, np.ones(4))
    with pytest.raises(ValueError, match="weights"):
        _core.softmax_cross_entropy_probs(z, probs, d, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="must not overlap weights"):
        _core.mean_squared_error(z, probs, d, d.reshape(-1)[:4])
    with pytest.raises(TypeError, match="weights"):
        _core.binary_cross_entropy_with_logits(z, probs, d, [1.0] * 4)
    assert (d == 7).all()  # nothing written
