"""Fused losses: softmax cross-entropy (class ids and target rows), binary
cross-entropy with logits, mean squared error. Parity with the NumPy twins
under every ISA path and thread count, centered finite differences,
stability at logits of +-1e4, and the errors of the ops contract.

Parity is normwise: max|fast - twin| / max|twin| <= 1e-12 in float64 and
<= 1e-5 in float32 (measured: a few 1e-7), for the loss and the gradient.
"""
import numpy as np
import pytest

import fastnn
from fastnn import _core, ops, reference as ref

# 1, primes, sizes off the SIMD widths; (64, 1000) and (300, 257) use 2 threads
SHAPES = [(1, 1), (1, 10), (3, 7), (17, 31), (5, 100), (64, 1000), (300, 257)]
TOL = {np.float64: 1e-12, np.float32: 1e-5}
ELEMENTWISE = ["binary_cross_entropy_with_logits", "mean_squared_error"]






def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.abs(b).max()
    return np.abs(a - b).max() / scale if scale > 0 else np.abs(a - b).max()


def logits_and_labels(m, C, dtype, seed=0):
    rng = np.random.default_rng(seed + 31 * m + C)
    z = (rng.standard_normal((m, C)) * 3).astype(dtype)
    ids = rng.integers(0, C, m)
    probs = rng.random((m, C)).astype(dtype)
    probs /= probs.sum(axis=1, keepdims=True)
    return z, ids, probs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_cross_entropy_with_ids_matches_twin(isa, threads, dtype, shape):
    z, ids, _ = logits_and_labels(*shape, dtype)
    loss, grad = ops.softmax_cross_entropy(z, ids)
    want_loss, want_grad = ref.softmax_cross_entropy(z, ids)
    assert isinstance(loss, float) and grad.dtype == dtype
    assert rel_err(loss, want_loss) <= TOL[dtype]
    assert rel_err(grad, want_grad) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_cross_entropy_with_probability_rows_matches_twin(isa, threads, dtype, shape):
    z, ids, probs = logits_and_labels(*shape, dtype)
    for t in (probs, np.eye(shape[1], dtype=dtype)[ids]):
        loss, grad = ops.softmax_cross_entropy(z, t)
        want_loss, want_grad = ref.softmax_cross_entropy(z, t)
        assert rel_err(loss, want_loss) <= TOL[dtype]
        assert rel_err(grad, want_grad) <= TOL[dtype]


@pytest.mark.parametrize("label_dtype", [np.int8, np.uint8, np.int16, np.int32, np.uint32, np.int64, np.uint64])
def test_softmax_cross_entropy_accepts_any_integer_label_dtype(label_dtype):
    z, ids, _ = logits_and_labels(6, 11, np.float64)
    loss, grad = ops.softmax_cross_entropy(z, ids.astype(label_dtype))
    want_loss, want_grad = ref.softmax_cross_entropy(z, ids)
    assert rel_err(loss, want_loss) <= 1e-12 and rel_err(grad, want_grad) <= 1e-12


def test_one_hot_rows_and_ids_agree():
    z, ids, _ = logits_and_labels(9, 13, np.float64)
    a = ops.softmax_cross_entropy(z, ids)
    b = ops.softmax_cross_entropy(z, np.eye(13)[ids])
    assert abs(a[0] - b[0]) <= 1e-14 * abs(a[0])
    np.testing.assert_allclose(a[1], b[1], rtol=0, atol=1e-16)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES + [(7,), (2, 3, 5)])
def test_elementwise_losses_match_twin(isa, threads, name, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.random(shape).astype(dtype)
    loss, grad = getattr(ops, name)(z, t)
    want_loss, want_grad = getattr(ref, name)(z, t)
    assert grad.dtype == dtype and grad.shape == z.shape
    assert rel_err(loss, want_loss) <= TOL[dtype]
    assert rel_err(grad, want_grad) <= TOL[dtype]


def test_losses_do_not_depend_on_thread_count():
    z, ids, probs = logits_and_labels(200, 1000, np.float32)
    t = np.random.default_rng(1).random(z.shape).astype(np.float32)
    calls = [lambda: ops.softmax_cross_entropy(z, ids), lambda: ops.softmax_cross_entropy(z, probs),
             lambda: ops.binary_cross_entropy_with_logits(z, t), lambda: ops.mean_squared_error(z, t)]
    old = fastnn.get_num_threads()
    results = []
    for nt in (1, 2):
        fastnn.set_num_threads(nt)
        results.append([f() for f in calls])
    fastnn.set_num_threads(old)
    for (l1, g1), (l2, g2) in zip(*results):
        assert l1 == l2
        np.testing.assert_array_equal(g1, g2)


def centered_difference(f, x, h=1e-5):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


def test_softmax_cross_entropy_matches_finite_differences(isa):
    z, ids, probs = logits_and_labels(4, 5, np.float64, seed=2)
    for labels in (ids, probs):
        _, grad = ops.softmax_cross_entropy(z, labels)
        num = centered_difference(lambda zz: ops.softmax_cross_entropy(zz, labels)[0], z)
        assert rel_err(grad, num) < 1e-7


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_losses_match_finite_differences(isa, name):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 5)) * 2
    t = rng.random((4, 5))
    _, grad = getattr(ops, name)(z, t)
    num = centered_difference(lambda zz: getattr(ops, name)(zz, t)[0], z)
    assert rel_err(grad, num) < 1e-7


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_logits_give_finite_results(isa, dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=dtype)
    ids = np.array([1, 2, 0])
    for labels in (ids, np.eye(3, dtype=dtype)[ids], np.full((3, 3), 1 / 3, dtype=dtype)):
        loss, grad = ops.softmax_cross_entropy(z, labels)
        want_loss, want_grad = ref.softmax_cross_entropy(z, labels)
        assert np.isfinite(loss) and np.isfinite(grad).all()
        assert rel_err(loss, want_loss) <= TOL[dtype]
        assert rel_err(grad, want_grad) <= TOL[dtype]
    t = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [0.0, 1.0, 0.0]], dtype=dtype)
    loss, grad = ops.binary_cross_entropy_with_logits(z, t)
    want_loss, want_grad = ref.binary_cross_entropy_with_logits(z, t)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert rel_err(loss, want_loss) <= TOL[dtype] and rel_err(grad, want_grad) <= TOL[dtype]


@pytest.mark.parametrize("bad", [-1, 7, 1000])
def test_out_of_range_class_id_is_a_value_error_naming_it(bad):
    z, ids, _ = logits_and_labels(5, 7, np.float32)
    ids[3] = bad
    with pytest.raises(ValueError, match=f"class id {bad} at index 3"):
        ops.softmax_cross_entropy(z, ids)
    with pytest.raises(ValueError, match=f"class id {bad}"):
        ref.softmax_cross_entropy(z, ids)


def test_huge_unsigned_class_id_is_reported_unwrapped():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=str(2**64 - 1)):
        ops.softmax_cross_entropy(z, np.array([0, 2**64 - 1], dtype=np.uint64))


def test_core_rejects_out_of_range_ids_without_crashing():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match="class id -5"):
        _core.softmax_cross_entropy_ids(z, np.array([0, -5]), np.empty_like(z))
    with pytest.raises(ValueError):
        _core.softmax_cross_entropy_ids(z, np.array([0]), np.empty_like(z))
    with pytest.raises(TypeError):
        _core.softmax_cross_entropy_ids(z, np.array([0, 1], dtype=np.int32), np.empty_like(z))
    with pytest.raises(ValueError):
        _core.softmax_cross_entropy_probs(z, np.zeros(5), np.empty_like(z))
    with pytest.raises(ValueError):
        _core.binary_cross_entropy_with_logits(z, z, np.empty(2))
    with pytest.raises(ValueError):
        _core.mean_squared_error(np.zeros(0), np.zeros(0), np.zeros(0))


def test_shape_errors_name_the_argument():
    z, ids, probs = logits_and_labels(4, 6, np.float64)
    with pytest.raises(ValueError, match="labels"):
        ops.softmax_cross_entropy(z, ids[:3])
    with pytest.raises(ValueError, match="labels"):
        ops.softmax_cross_entropy(z, probs[:, :5])
    with pytest.raises(ValueError, match="logits"):
        ops.softmax_cross_entropy(z[0], ids)
    with pytest.raises(ValueError, match="logits"):
        ops.softmax_cross_entropy(z[:0], ids[:0])
    with pytest.raises(TypeError, match="labels"):
        ops.softmax_cross_entropy(z, ids.astype(str))
    with pytest.raises(ValueError, match="targets"):
        ops.binary_cross_entropy_with_logits(z, z[:2])
    with pytest.raises(ValueError, match="target"):
        ops.mean_squared_error(z, z.T)
    with pytest.raises(TypeError, match="pred"):
        ops.mean_squared_error(z.astype(np.int64), z)


def test_nan_logit_gives_nan_loss_not_a_silent_number(isa):
    z, ids, probs = logits_and_labels(4, 19, np.float32)
    z[2, 5] = np.nan
    for labels in (ids, probs):
        loss, grad = ops.softmax_cross_entropy(z, labels)
        assert np.isnan(loss) and np.isnan(grad[2]).all() and np.isfinite(np.delete(grad, 2, axis=0)).all()
    loss, grad = ops.binary_cross_entropy_with_logits(z, probs)
    assert np.isnan(loss) and np.isnan(grad[2, 5])


def test_out_receives_the_gradient():
    z, ids, probs = logits_and_labels(6, 11, np.float64)
    for fn, args in ((ops.softmax_cross_entropy, (z, ids)), (ops.softmax_cross_entropy, (z, probs)),
                     (ops.binary_cross_entropy_with_logits, (z, probs)), (ops.mean_squared_error, (z, probs))):
        out = np.empty_like(z)
        loss, grad = fn(*args, out=out)
        want_loss, want_grad = getattr(ref, fn.__name__)(*args)
        assert grad is out and rel_err(grad, want_grad) <= 1e-12 and rel_err(loss, want_loss) <= 1e-12
        with pytest.raises(ValueError, match="overlap"):
            fn(*args, out=z)
