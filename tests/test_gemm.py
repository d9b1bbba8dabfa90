"""fastnn.ops.matmul against its NumPy twin (fastnn.reference.matmul).

Every test runs under every ISA path this machine supports (``isa`` fixture)
and, where threads could matter, with 1 and 2 threads. Error bound for a dot
product of length k: |c - c_ref| <= c0 * (k + 2) * max|a| * max|b| * |alpha| * eps
plus the rounding of the beta*out and bias terms.
"""
import numpy as np
import pytest

import fastnn
import fastnn.ops as ops
import fastnn.reference as ref
from fastnn import _core

DTYPES = [np.float32, np.float64]
TRANSPOSES = [(False, False), (False, True), (True, False), (True, True)]

# (m, n, k): ones, primes, one off the micro-tile sizes (6x16, 12x32, 4x4),
# tall-skinny, short-wide, and MLP-like.
SHAPES = [
    (1, 1, 1), (1, 7, 5), (5, 1, 3), (3, 4, 1),
    (97, 131, 61),
    (11, 31, 17), (13, 33, 9), (5, 15, 7), (7, 17, 8),
    (1000, 3, 20), (2, 700, 30),
    (64, 128, 100),
]






def operands(m, n, k, dtype, ta, tb, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def tolerance(a, b, k, dtype, alpha=1.0, beta=0.0, out=None, bias=None, result=None):
    eps = np.finfo(dtype).eps
    amax = float(np.abs(a).max()) if a.size else 0.0
    bmax = float(np.abs(b).max()) if b.size else 0.0
    tol = 4 * (k + 2) * amax * bmax * abs(alpha) * eps
    if out is not None and beta != 0.0 and out.size:
        tol += 4 * abs(beta) * float(np.abs(out).max()) * eps
    if bias is not None and bias.size:
        tol += 4 * float(np.abs(bias).max()) * eps
    if result is not None and result.size:  # activation approximations: a few ulp of the output
        tol = 2 * tol + 16 * eps * float(np.abs(result).max())
    return tol + np.finfo(dtype).tiny


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_plain_product_matches_reference_for_all_transposes(isa, threads, shape, dtype):
    m, n, k = shape
    for ta, tb in TRANSPOSES:
        a, b = operands(m, n, k, dtype, ta, tb)
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb)
        want = ref.matmul(a, b, trans_a=ta, trans_b=tb)
        assert got.dtype == dtype and got.shape == (m, n)
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(a, b, k, dtype), err_msg=f"ta={ta} tb={tb}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_product_crossing_every_block_boundary(isa, dtype):
    # n > NC, k > KC, m > MC for every ISA's blocking (blocking.h)
    m, n, k = 251, 4133, 263
    for ta, tb in TRANSPOSES:
        a, b = operands(m, n, k, dtype, ta, tb, seed=1)
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb, alpha=0.75)
        want = ref.matmul(a, b, trans_a=ta, trans_b=tb, alpha=0.75)
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(a, b, k, dtype, 0.75), err_msg=f"ta={ta} tb={tb}")


EPILOGUES = [
    dict(alpha=2.5),
    dict(alpha=-1.0, beta=0.5),
    dict(beta=1.0, bias=True),
    dict(bias=True, activation="relu"),
    dict(alpha=0.5, beta=-2.0, bias=True, activation="tanh"),
    dict(bias=True, activation="sigmoid"),
    dict(bias=True, activation="leaky_relu", activation_alpha=0.2),
    dict(beta=1.0, activation="elu"),
    dict(bias=True, activation="selu"),
    dict(bias=True, activation="swish"),
    dict(bias=True, activation="softplus"),
    dict(activation="linear"),
    dict(alpha=0.0, beta=1.0, bias=True),
]


def check_epilogue(m, n, k, ta, tb, epi, dtype, rng, seed, label=""):
    """ops.matmul with the epilogue `epi` (bias=True: a random bias) into a random out, against ref.matmul."""
    a, b = operands(m, n, k, dtype, ta, tb, seed=seed)
    kw = dict(epi)
    if kw.pop("bias", False):
        kw["bias"] = rng.standard_normal(n).astype(dtype)
    out0 = rng.standard_normal((m, n)).astype(dtype)
    want = ref.matmul(a, b, trans_a=ta, trans_b=tb, out=out0.copy(), **kw)
    out = out0.copy()
    got = ops.matmul(a, b, trans_a=ta, trans_b=tb, out=out, **kw)
    assert got is out
    tol = tolerance(a, b, k, dtype, kw.get("alpha", 1.0), kw.get("beta", 0.0), out0, kw.get("bias"), want)
    np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=f"{(m, n, k)} ta={ta} tb={tb} {label}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("epi", EPILOGUES, ids=lambda e: "-".join(f"{k}={v}" for k, v in e.items()))
def test_epilogue_matches_reference(isa, threads, epi, dtype):
    rng = np.random.default_rng(2)
    for (m, n, k), (ta, tb) in zip([(97, 131, 61), (13, 33, 300), (64, 10, 128), (7, 5, 3)], TRANSPOSES):
        check_epilogue(m, n, k, ta, tb, epi, dtype, rng, seed=3)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_k_zero_gives_beta_out_plus_bias(isa, dtype):
    a = np.zeros((5, 0), dtype)
    b = np.zeros((0, 7), dtype)
    out = np.arange(35, dtype=dtype).reshape(5, 7)
    bias = np.linspace(-1, 1, 7).astype(dtype)
    want = 0.5 * out + bias
    got = ops.matmul(a, b, beta=0.5, out=out.copy(), bias=bias)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ops.matmul(a, b), np.zeros((5, 7), dtype))
    np.testing.assert_array_equal(ops.matmul(a, b, bias=bias, activation="relu"),
                                  np.broadcast_to(np.maximum(bias, 0), (5, 7)))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", [(0, 5, 3), (4, 0, 3), (0, 0, 0), (0, 3, 0)], ids=str)
def test_zero_sized_result(isa, shape, dtype):
    m, n, k = shape
    for ta, tb in TRANSPOSES:
        a, b = operands(m, n, k, dtype, ta, tb)
        got = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=np.ones(n, dtype), activation="relu")
        assert got.shape == (m, n) and got.dtype == dtype


def test_beta_zero_never_reads_out(isa):
    a, b = operands(9, 20, 5, np.float32, False, False)
    out = np.full((9, 20), np.nan, np.float32)
    ops.matmul(a, b, out=out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)


def test_out_aliasing_an_input_gives_the_same_result(isa):
    a = np.random.default_rng(4).standard_normal((16, 16)).astype(np.float32)
    want = a @ a
    ops.matmul(a, a, out=a)
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-4)


def test_non_contiguous_inputs_are_copied(isa):
    a, b = operands(20, 30, 40, np.float64, False, False)
    got = ops.matmul(a[:, ::2], b[::2])
    np.testing.assert_allclose(got, a[:, ::2] @ b[::2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_threaded_result_is_bitwise_identical_across_runs(isa, dtype):
    fastnn.set_num_threads(2)
    try:
        a, b = operands(300, 517, 301, dtype, False, True)
        bias = np.linspace(-1, 1, 517).astype(dtype)
        first = ops.matmul(a, b, trans_b=True, bias=bias, activation="tanh")
        for _ in range(4):
            again = ops.matmul(a, b, trans_b=True, bias=bias, activation="tanh")
            assert np.array_equal(first, again)
        fastnn.set_num_threads(1)
        assert np.array_equal(first, ops.matmul(a, b, trans_b=True, bias=bias, activation="tanh"))
    finally:
        fastnn.set_num_threads(_default_threads)


_default_threads = fastnn.get_num_threads()


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_inner_dimension_mismatch_names_both_shapes():
    a = np.ones((3, 4), np.float32)
    b = np.ones((5, 6), np.float32)
    with pytest.raises(ValueError, match=r"a, b: .*\(3, 4\).*\(5, 6\)"):
        ops.matmul(a, b)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3, 4\)"):
        ops.matmul(a, a.copy(), trans_a=True, trans_b=True)


def test_wrong_out_shape_dtype_or_layout():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match=r"out: expected shape \(3, 5\), got \(5, 3\)"):
        ops.matmul(a, b, out=np.zeros((5, 3), np.float32))
    with pytest.raises(TypeError, match="out: expected dtype float32, got float64"):
        ops.matmul(a, b, out=np.zeros((3, 5), np.float64))
    with pytest.raises(ValueError, match="out: expected a C-contiguous"):
        ops.matmul(a, b, out=np.zeros((5, 3), np.float32).T)
    ro = np.zeros((3, 5), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: expected a writeable"):
        ops.matmul(a, b, out=ro)


def test_wrong_bias():
    a = np.ones((3, 4), np.float64)
    b = np.ones((4, 5), np.float64)
    with pytest.raises(ValueError, match=r"bias: expected shape \(5,\), got \(4,\)"):
        ops.matmul(a, b, bias=np.ones(4))
    with pytest.raises(ValueError, match="bias: expected 1 dimensions"):
        ops.matmul(a, b, bias=np.ones((1, 5)))
    with pytest.raises(TypeError, match="bias: expected dtype float64"):
        ops.matmul(a, b, bias=np.ones(5, np.float32))


def test_wrong_operand_types():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(TypeError, match="b: expected dtype float32"):
        ops.matmul(a, np.ones((4, 2), np.float64))
    with pytest.raises(TypeError, match="a: expected a numpy.ndarray"):
        ops.matmul([[1.0]], a)
    with pytest.raises(TypeError, match="a: expected dtype float32 or float64, got int64"):
        ops.matmul(np.ones((2, 3), np.int64), a)
    with pytest.raises(ValueError, match="a: expected 2 dimensions, got 1"):
        ops.matmul(np.ones(4, np.float32), a)
    with pytest.raises(TypeError, match="trans_a: expected a bool"):
        ops.matmul(a, a, trans_a="yes")


def test_bad_scalars_and_activation():
    a = np.ones((3, 4), np.float32)
    b = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="out: beta = 1.0 reads out"):
        ops.matmul(a, b, beta=1.0)
    with pytest.raises(TypeError, match="alpha: expected a real number"):
        ops.matmul(a, b, alpha="2")
    with pytest.raises(ValueError, match="beta: expected a finite number"):
        ops.matmul(a, b, beta=float("nan"), out=np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="activation: unknown activation 'threshold'"):
        ops.matmul(a, b, activation="threshold")  # Keras's, two parameters: not in the registry


def test_core_rejects_bad_arguments_on_its_own():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="inner dimensions"):
        _core.matmul(a, a, np.zeros((3, 4), np.float32), False, False, 1.0, 0.0, None, None, 0.0)
    with pytest.raises(ValueError, match="bias: expected shape"):
        _core.matmul(a, a.T.copy(), np.zeros((3, 3), np.float32), False, False, 1.0, 0.0,
                     np.ones(2, np.float32), None, 0.0)


# ---------------------------------------------------------------------------
# every code path, whatever the size heuristics pick
# ---------------------------------------------------------------------------

@pytest.fixture(params=["packed_a", "in_place_a"])
def a_mode(request):
    packed = request.param == "packed_a"
    _core._gemm_set_tuning(0 if packed else 1 << 40, -1, 0 if packed else 1)  # transposed A too
    yield request.param
    _core._gemm_set_tuning(-1, -1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_packed_and_in_place_a_match_reference(isa, a_mode, dtype):
    for (m, n, k), (ta, tb) in zip([(97, 131, 61), (13, 10, 40), (64, 784, 37), (31, 7, 300)], TRANSPOSES):
        for ta_, tb_ in ((ta, tb), (not ta, not tb)):
            a, b = operands(m, n, k, dtype, ta_, tb_)
            bias = np.linspace(-1, 1, n).astype(dtype)
            got = ops.matmul(a, b, trans_a=ta_, trans_b=tb_, bias=bias, activation="tanh")
            want = ref.matmul(a, b, trans_a=ta_, trans_b=tb_, bias=bias, activation="tanh")
            np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(a, b, k, dtype, bias=bias, result=want),
                                       err_msg=f"{(m, n, k)} ta={ta_} tb={tb_}")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_two_threads_on_tiny_products_match_one_thread_bitwise(isa, dtype):
    # grain 0: every product is split, thin ones by rows, wide ones by columns
    _core._gemm_set_tuning(-1, 0)
    try:
        for (m, n, k), (ta, tb) in zip([(2, 3, 4), (50, 9, 33), (9, 200, 17), (1, 64, 5)], TRANSPOSES):
            a, b = operands(m, n, k, dtype, ta, tb)
            fastnn.set_num_threads(2)
            two = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=np.ones(n, dtype), activation="relu")
            fastnn.set_num_threads(1)
            one = ops.matmul(a, b, trans_a=ta, trans_b=tb, bias=np.ones(n, dtype), activation="relu")
            assert np.array_equal(one, two), (m, n, k)
    finally:
        _core._gemm_set_tuning(-1, -1)
        fastnn.set_num_threads(_default_threads)


def test_misaligned_inputs_are_copied_and_misaligned_out_is_refused():
    def misaligned(shape):
        n = int(np.prod(shape))
        x = np.zeros(4 * n + 1, np.uint8)[1:].view(np.float32).reshape(shape)
        x[...] = np.arange(n, dtype=np.float32).reshape(shape) / n
        assert not x.flags.aligned
        return x
    a, b = misaligned((5, 7)), misaligned((7, 3))
    np.testing.assert_allclose(ops.matmul(a, b), np.array(a) @ np.array(b), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="out: expected an aligned array"):
        ops.matmul(np.array(a), np.array(b), out=misaligned((5, 3)))
