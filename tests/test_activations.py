"""Activation kernels, their gradients and softmax against the NumPy twins.

Guaranteed accuracy (float32, our own vector polynomials, measured over a dense
grid on [-87, 87] plus random normals, every ISA path):
    relu, leaky_relu: exact;  elu, tanh: 2 ulp;  sigmoid, swish, selu: 3 ulp;
    softplus: 4 ulp.  Results below FLT_MIN flush to 0.
float64 uses libm lane by lane: within 1e-12 relative of NumPy.
"""
import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import ops, reference as ref

ACTS = ["identity", "relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "swish", "softplus"]
EXACT = ("identity", "relu", "leaky_relu")  # bitwise equal to the float32 twin
ULP_BOUND = {"identity": 0, "relu": 0, "leaky_relu": 0, "elu": 2, "tanh": 2,
             "sigmoid": 3, "swish": 3, "selu": 3, "softplus": 4}
SHAPES = [(1,), (1, 1), (7, 13), (1000, 1003), (3, 5, 17), (0,), (0, 4)]


def check_float32(name, x32, y32):
    """Bitwise equal to the float32 twin for the relu family, else within ULP_BOUND
    of the float64 twin."""
    if name in EXACT:
        np.testing.assert_array_equal(y32, ref.activation(name, x32))
    else:
        assert ulp_error(y32, ref.activation(name, x32.astype(np.float64))) <= ULP_BOUND[name]


def ulp_error(y32, r64):
    """|y - r| in units of the float32 spacing at r, where r is a normal float32."""
    r = r64.astype(np.float64)
    normal = np.abs(r) >= np.finfo(np.float32).tiny
    sp = np.spacing(np.abs(r).astype(np.float32)).astype(np.float64)
    err = np.abs(y32.astype(np.float64) - r) / sp
    return float(np.max(np.where(normal, err, 0.0), initial=0.0))


def rand(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# ---------------------------------------------------------------- forward

@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_float64_matches_numpy(isa, name, shape):
    x = rand(shape, np.float64)
    np.testing.assert_allclose(ops.activation(name, x), ref.activation(name, x), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_float32_within_ulp_bound(isa, name, shape):
    x = rand(shape, np.float32)
    y = ops.activation(name, x)
    assert y.dtype == np.float32 and y.shape == x.shape
    check_float32(name, x, y)


@pytest.mark.parametrize("name", ACTS)
def test_forward_float32_dense_grid(isa, name):
    x = np.concatenate([np.linspace(-87, 87, 400_003), rand(100_000, np.float64, 1, 1.0)]).astype(np.float32)
    check_float32(name, x, ops.activation(name, x))


@pytest.mark.parametrize("name", ["leaky_relu", "elu"])
@pytest.mark.parametrize("alpha", [0.2, 2.5])
def test_forward_alpha(isa, name, alpha):
    x = rand((37, 11), np.float64)
    np.testing.assert_allclose(ops.activation(name, x, alpha=alpha), ref.activation(name, x, alpha=alpha),
                               rtol=1e-12)


def test_aliases_linear_and_silu():
    x = rand((5, 9), np.float64)
    np.testing.assert_array_equal(ops.activation("linear", x), x)
    np.testing.assert_array_equal(ops.activation("silu", x), ops.activation("swish", x))


def test_one_registry_for_ops_activations_and_reference():
    """Names, aliases, default alphas and gradient needs come from _core.activations()
    only (issue 11): leaky_relu's default was 0.01 in ops and 0.2 in activations.py."""
    from fastnn import _core, activations
    reg = _core.activations()
    assert tuple(reg) == ops.ACTIVATIONS == ref.ACTIVATIONS
    assert {r["grad_needs"] for r in reg.values()} == {"none", "x", "x_or_y"}
    assert reg["silu"]["canonical"] == "swish" and reg["identity"]["canonical"] == "linear"
    assert set(activations.KNOWN) == {r["canonical"] for r in reg.values()} | {"softmax"}
    # leaky_relu: ONE default, keras.activations.leaky_relu's negative_slope 0.2
    assert reg["leaky_relu"]["alpha"] == 0.2 == ref.DEFAULT_ALPHA["leaky_relu"]
    assert activations.get("leaky_relu").alpha == 0.2 and activations.LeakyReLU().alpha == 0.2
    assert reg["elu"]["alpha"] == 1.0 and reg["relu"]["alpha"] is None
    x = rand((6, 7), np.float64)
    want = np.where(x > 0, x, 0.2 * x)
    for got in (ops.activation("leaky_relu", x), activations.get("leaky_relu")(x), ref.activation("leaky_relu", x),
                ops.matmul(x, np.eye(7), activation="leaky_relu")):
        np.testing.assert_allclose(got, want, rtol=1e-15)
    for name, row in reg.items():  # what the gradient needs is what the ops accept
        dy = np.ones(3)
        if row["grad_needs"] == "x":
            with pytest.raises(ValueError, match="^x: "):
                ops.activation_grad(name, dy, y=np.ones(3))
        if row["grad_needs"] == "x_or_y":
            ops.activation_grad(name, dy, y=np.ones(3))
            with pytest.raises(ValueError, match="^x, y: "):
                ops.activation_grad(name, dy)
        if row["grad_needs"] == "none":
            np.testing.assert_array_equal(ops.activation_grad(name, dy), dy)


@pytest.fixture(scope="module")
def big16m():
    x = rand(16 * 1024 * 1024, np.float32, seed=7)
    return x, x.astype(np.float64)


@pytest.mark.parametrize("name", ACTS)
def test_16m_elements_forward_and_grad(isa, big16m, name):
    x32, x64 = big16m
    y = ops.activation(name, x32)
    if name in EXACT:
        np.testing.assert_array_equal(y, ref.activation(name, x32))
    else:
        assert ulp_error(y, ref.activation(name, x64)) <= ULP_BOUND[name]
    dy = np.ones_like(x32)
    g = ops.activation_grad(name, dy, x=x32)
    gr = ref.activation_grad(name, dy.astype(np.float64), x=x64)
    np.testing.assert_allclose(g, gr, rtol=3e-6, atol=3e-6)


# ---------------------------------------------------------------- special values

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_saturate_without_nan(isa, dtype):
    x = np.array([-1000, -100, -88.8, 88.8, 100, 1000], dtype=dtype)
    s = ops.activation("sigmoid", x)
    assert s[0] == 0 and s[-1] == 1 and np.all(np.isfinite(s))
    t = ops.activation("tanh", x)
    assert t[0] == -1 and t[-1] == 1
    sp = ops.activation("softplus", x)
    assert sp[0] == 0 and sp[-1] == 1000
    e = ops.activation("elu", x)
    assert e[0] == -1 and e[-1] == 1000
    sw = ops.activation("swish", x)
    assert sw[0] == 0 and sw[-1] == 1000
    for name in ACTS:
        assert np.all(np.isfinite(ops.activation(name, x))), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ACTS)
def test_nan_in_nan_out(isa, name, dtype):
    x = np.array([np.nan, 1.0, np.nan, -2.0] * 5, dtype=dtype)
    y = ops.activation(name, x)
    assert np.all(np.isnan(y[::2])) and np.all(np.isfinite(y[1::2]))
    g = ops.activation_grad(name, np.ones_like(x), x=x)
    if name != "identity":
        assert np.all(np.isnan(g[::2])), name


def test_infinities(isa):
    x = np.array([-np.inf, np.inf], dtype=np.float32)
    np.testing.assert_array_equal(ops.activation("sigmoid", x), [0, 1])
    np.testing.assert_array_equal(ops.activation("tanh", x), [-1, 1])
    np.testing.assert_array_equal(ops.activation("relu", x), [0, np.inf])


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1000, 1003)])
def test_grad_from_x_float64_matches_numpy(isa, name, shape):
    x = rand(shape, np.float64, 1)
    dy = rand(shape, np.float64, 2, 1.0)
    # 1 - tanh^2 and s(1 - s) cancel near saturation: absolute slack at the scale of dy
    np.testing.assert_allclose(ops.activation_grad(name, dy, x=x), ref.activation_grad(name, dy, x=x),
                               rtol=1e-12, atol=1e-15 * np.abs(dy).max(initial=1.0))


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_from_y_matches_grad_from_x(isa, name, dtype):
    x = rand((31, 17), dtype, 3)
    dy = rand((31, 17), dtype, 4, 1.0)
    y = ops.activation(name, x)
    gx = ref.activation_grad(name, dy.astype(np.float64), x=x.astype(np.float64))
    tol = 1e-12 if dtype == np.float64 else 3e-6
    np.testing.assert_allclose(ops.activation_grad(name, dy, y=y), gx, rtol=tol, atol=tol)
    np.testing.assert_allclose(ops.activation_grad(name, dy, y=y), ref.activation_grad(name, dy, y=y),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ACTS)
def test_grad_float32_close_to_float64(isa, name):
    x = rand((1000, 1003), np.float32, 5)
    dy = rand((1000, 1003), np.float32, 6, 1.0)
    g = ops.activation_grad(name, dy, x=x)
    gr = ref.activation_grad(name, dy.astype(np.float64), x=x.astype(np.float64))
    np.testing.assert_allclose(g, gr, rtol=3e-6, atol=3e-6 * np.abs(dy).max())


@pytest.mark.parametrize("name", [a for a in ACTS if a != "identity"])
def test_grad_matches_centered_finite_differences(name):
    x = rand(2000, np.float64, 8, 1.0)
    x = x[(np.abs(x) > 1e-3) & (np.abs(x) < 3)]  # away from kinks; derivatives not vanishing
    h = 1e-6
    numeric = (ops.activation(name, x + h) - ops.activation(name, x - h)) / (2 * h)
    analytic = ops.activation_grad(name, np.ones_like(x), x=x)
    rel = np.abs(numeric - analytic) / np.maximum(np.abs(numeric) + np.abs(analytic), 1e-12)
    assert rel.max() < 1e-7


def test_grad_out_may_alias_dy(isa):
    x = rand((9, 33), np.float32)
    dy = rand((9, 33), np.float32, 1)
    expected = ops.activation_grad("tanh", dy, x=x)
    ops.activation_grad("tanh", dy, x=x, out=dy)
    np.testing.assert_array_equal(dy, expected)


# ---------------------------------------------------------------- softmax

@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (7, 13), (128, 10), (33, 1000), (5,), (0, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_and_log_softmax_match_numpy(isa, shape, dtype):
    x = rand(shape, dtype, 9)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(ops.softmax(x), ref.softmax(x), rtol=tol, atol=1e-30)
    np.testing.assert_allclose(ops.log_softmax(x), ref.log_softmax(x.astype(np.float64)), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_extreme_logits_are_finite(isa, dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    s = ops.softmax(x)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s.sum(axis=1), 1, rtol=1e-6)
    assert np.all(np.isfinite(ops.log_softmax(x)))


def test_softmax_nan_row_stays_in_its_row(isa):
    x = np.array([[1.0, np.nan, 2.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    s = ops.softmax(x)
    assert np.all(np.isnan(s[0])) and np.all(np.isfinite(s[1]))


def test_softmax_rows_parallel_matches_serial():
    x = rand((4096, 37), np.float32, 11)
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        a = ops.softmax(x)
        fastnn.set_num_threads(2)
        b = ops.softmax(x)
    finally:
        fastnn.set_num_threads(before)
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- layout and errors

def test_noncontiguous_input_is_copied(isa):
    x = rand((20, 30), np.float64)[:, ::3]
    np.testing.assert_allclose(ops.activation("tanh", x), np.tanh(x), rtol=1e-12)


def test_out_is_filled_and_returned(isa):
    x = rand((4, 5), np.float32)
    out = np.empty_like(x)
    assert ops.activation("relu", x, out=out) is out
    np.testing.assert_array_equal(out, np.maximum(x, 0))


def test_in_place(isa):
    x = rand((4, 50), np.float32)
    expected = ops.activation("sigmoid", x)
    ops.activation("sigmoid", x, out=x)
    np.testing.assert_array_equal(x, expected)


def test_empty_arrays_return_empty():
    for shape in [(0,), (0, 7), (3, 0)]:
        x = np.zeros(shape, np.float32)
        assert ops.activation("tanh", x).shape == shape
        assert ops.activation_grad("tanh", x, y=x).shape == shape


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.bool_, np.complex64, object])
def test_wrong_dtype_is_a_type_error(dtype):
    x = np.zeros((3, 3), dtype=dtype)
    with pytest.raises(TypeError, match=r"x: expected dtype float32 or float64, got"):
        ops.activation("relu", x)


def test_non_array_is_a_type_error():
    with pytest.raises(TypeError, match="x: expected a numpy.ndarray"):
        ops.activation("relu", [1.0, 2.0])


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match=r"name: unknown activation 'rleu'; known: .*relu"):
        ops.activation("rleu", np.zeros(3))
    with pytest.raises(TypeError, match="name: expected an activation name"):
        ops.activation(3, np.zeros(3))


def test_bad_out_arguments():
    x = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError, match=r"out: expected shape \(4, 6\), got \(6, 4\)"):
        ops.activation("relu", x, out=np.zeros((6, 4), np.float32))
    with pytest.raises(TypeError, match="out: expected dtype float32, got float64"):
        ops.activation("relu", x, out=np.zeros((4, 6)))
    with pytest.raises(ValueError, match="out: expected a C-contiguous array"):
        ops.activation("relu", x, out=np.zeros((4, 12), np.float32)[:, ::2])
    ro = np.zeros((4, 6), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out: expected a writeable array"):
        ops.activation("relu", x, out=ro)


def test_grad_argument_errors():
    dy = np.zeros((3, 4))
    with pytest.raises(ValueError, match="x: activation 'swish' needs the forward input x"):
        ops.activation_grad("swish", dy, y=dy)
    with pytest.raises(ValueError, match="give the forward input x or the forward output y"):
        ops.activation_grad("tanh", dy)
    with pytest.raises(ValueError, match=r"x: expected shape \(3, 4\), got \(4, 3\)"):
        ops.activation_grad("tanh", dy, x=np.zeros((4, 3)))
    with pytest.raises(TypeError, match="y: expected dtype float64"):
        ops.activation_grad("tanh", dy, y=np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="alpha: expected a real number"):
        ops.activation("elu", dy, alpha="big")


def test_softmax_wrong_ndim():
    with pytest.raises(ValueError, match=r"x: expected 1 or 2 dimensions, got 3"):
        ops.softmax(np.zeros((2, 3, 4)))


def test_core_rejects_bad_sizes_without_crashing():
    # _core is also safe on its own: sizes are checked in C++
    with pytest.raises(ValueError, match="out: expected 6 elements"):
        fastnn._core.activation_forward("relu", np.zeros(6), np.zeros(5), 0.0)
    with pytest.raises(TypeError):
        fastnn._core.activation_forward("relu", np.zeros(6, np.int32), np.zeros(6, np.int32), 0.0)


def test_kernel_releases_the_gil():
    x = rand(16 * 1024 * 1024, np.float32, 12)
    out = np.empty_like(x)
    counter = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    try:
        best = 0
        for _ in range(3):
            c0 = counter[0]
            for _ in range(4):
                ops.activation("tanh", x, out=out)  # long C calls: spin() runs only if the GIL is released
            best = max(best, counter[0] - c0)
    finally:
        stop.set()
        t.join()
    assert best > 1000


@pytest.mark.parametrize("offset", [0, 1, 3])
def test_large_outputs_streamed_at_any_alignment(isa, offset):
    # outputs >= 16 MiB use non-temporal stores after a peeled, unaligned head
    n = (1 << 22) + 5
    buf = np.empty(n + 8, np.float32)
    x = rand(n, np.float32, 13)
    out = buf[offset:offset + n]
    ops.activation("sigmoid", x, out=out)
    np.testing.assert_array_equal(out[:1000], ops.activation("sigmoid", x[:1000]))
    np.testing.assert_array_equal(out[-1000:], ops.activation("sigmoid", x[-1000:]))
    dy = rand(n, np.float32, 14)
    ops.activation_grad("tanh", dy, x=x, out=out)
    np.testing.assert_array_equal(out[-777:], ops.activation_grad("tanh", dy[-777:], x=x[-777:]))
    np.testing.assert_array_equal(out[:777], ops.activation_grad("tanh", dy[:777], x=x[:777]))
