"""mixed_bfloat16 in the native step and the mixed Dense backward as one core call.

* ``_core.dense_bf16_backward`` (the mixed Dense backward of the Python step and of the
  native step) is bitwise the op sequence the Python step ran before it: act' on the
  widened y, ``matmul_bf16`` for dW, ``column_sum`` for db, ``matmul_bf16`` for dx.
* A model with mixed Dense layers trains bitwise the same in the native step as in the
  Python step (FASTNN_NATIVE_STEP=0): parameters, gradients, optimizer state, losses;
  every bf16 path (the fallback on each ISA, the AVX512-BF16 kernel), 1 and 2 threads,
  bfloat16 activation storage on and off, Dropout, BatchNormalization, float32 layers
  in between, frozen layers.
"""
import numpy as np
import pytest

import fastnn
from fastnn import _core, ops
from fastnn import layers as L
from fastnn import optimizers as O
from test_native_step import _IDS, _ROWS
from test_native_step import _train as _train_step

MIXED = "mixed_bfloat16"


def _dense(units, k, policy=MIXED, **kw):
    return L.Dense(units, kernel_initializer=fastnn.initializers.GlorotUniform(seed=10 + k), dtype=policy, **kw)


# ------------------------------------------------- dense_bf16_backward == old ops
def _old_backward(x, y, W, dy, act, alpha, need_w, need_b, need_x):
    """The Python step's mixed Dense backward before the one core call."""
    yf = ops.bfloat16_unpack(y) if y.dtype == np.uint16 else y
    dz = dy.copy() if act == "identity" else ops.activation_grad(act, dy, y=yf, alpha=alpha)
    dW = ops.matmul_bf16(x, dz, trans_a=True) if need_w else None
    db = ops.column_sum(dz) if need_b else None
    dx = ops.matmul_bf16(dz, W, trans_b=True) if need_x else None
    return dz, dW, db, dx


SHAPES = [(37, 20, 48), (600, 30, 40), (64, 784, 10), (5, 3, 17), (130, 33, 4200)]


@pytest.mark.parametrize("m,n_in,n_out", SHAPES)
@pytest.mark.parametrize("act,alpha", [("relu", 0.0), ("leaky_relu", 0.2), ("tanh", 0.0), ("sigmoid", 0.0),
                                       ("identity", 0.0)])
@pytest.mark.parametrize("bits", [False, True])
def test_dense_bf16_backward_is_the_old_op_sequence(bf16_path, threads, m, n_in, n_out, act, alpha, bits):
    rng = np.random.default_rng(m + n_out)
    x = rng.standard_normal((m, n_in)).astype(np.float32)
    W = rng.standard_normal((n_in, n_out)).astype(np.float32)
    y = ops.activation(act, rng.standard_normal((m, n_out)).astype(np.float32), alpha=alpha or None)
    if bits:  # the layer below and this layer stored their outputs as bfloat16
        x, y = ops.bfloat16_pack(x), ops.bfloat16_pack(y)
    dy = rng.standard_normal((m, n_out)).astype(np.float32)
    dz, dW, db, dx = _old_backward(x, y, W, dy, act, alpha, True, True, True)
    got = [np.full((n_in, n_out), np.nan, np.float32), np.full(n_out, np.nan, np.float32),
           np.full((m, n_in), np.nan, np.float32)]
    d = dy.copy()
    _core.dense_bf16_backward(x, y, W, d, act, alpha, *got)
    np.testing.assert_array_equal(d, dz)
    for g, want in zip(got, (dW, db, dx)):
        np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("which", [(True, False, False), (False, False, True), (True, True, False)])
def test_dense_bf16_backward_skips_what_is_not_asked(bf16_path, which):
    rng = np.random.default_rng(5)
    x, W = rng.standard_normal((9, 6)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    y, dy = rng.random((9, 4)).astype(np.float32), rng.standard_normal((9, 4)).astype(np.float32)
    _, dW, db, dx = _old_backward(x, y, W, dy, "relu", 0.0, *which)
    outs = [np.zeros(s, np.float32) if w else None for s, w in zip(((6, 4), (4,), (9, 6)), which)]
    _core.dense_bf16_backward(x, y, W, dy.copy(), "relu", 0.0, *outs)
    for o, want in zip(outs, (dW, db, dx)):
        if want is not None:
            np.testing.assert_array_equal(o, want)


def test_dense_bf16_backward_checks_its_arguments():
    f = np.float32
    x, W, y, dy = np.ones((4, 3), f), np.ones((3, 2), f), np.ones((4, 2), f), np.ones((4, 2), f)
    dW, db, dx = np.zeros((3, 2), f), np.zeros(2, f), np.zeros((4, 3), f)
    call = _core.dense_bf16_backward
    cases = [
        ((x, y, W.astype(np.float64), dy, "relu", 0.0, dW, db, dx), TypeError, "W: expected dtype float32"),
        ((x, y, W, dy[:, :1].copy(), "relu", 0.0, dW, db, dx), ValueError, r"dy: expected shape \(m, 2\)"),
        ((x[:3], y, W, dy, "relu", 0.0, dW, db, dx), ValueError, r"x: expected shape \(4, 3\)"),
        ((x, y.astype(np.float64), W, dy, "relu", 0.0, dW, db, dx), TypeError, "y: expected dtype"),
        ((x, y, W, dy, "swish", 0.0, dW, db, dx), ValueError, "activation: expected one whose gradient"),
        ((x, y, W, dy, "nope", 0.0, dW, db, dx), ValueError, "nope"),
        ((x, y, W, dy, "relu", 0.0, dW.T.copy(), db, dx), ValueError, r"dW: expected shape \(3, 2\)"),
        ((x, y, W, dy, "relu", 0.0, dW, np.zeros(3, f), dx), ValueError, r"db: expected shape \(2,\)"),
        ((x, y, W, dy, "relu", 0.0, None, db, dx), ValueError, "db: given without dW"),
        ((x, y, W, dy, "relu", 0.0, dW, db, np.zeros((4, 2), f)), ValueError, r"dx: expected shape \(4, 3\)"),
        ((x, y, W, dy, "relu", 0.0, dW, db, dx.T), ValueError, "dx: expected a C-contiguous array"),
        ((x, y, W, dy, "relu", 0.0, dW, dW[0], dx), ValueError, "db: must not share memory with dW"),
        ((x, y, W, dy, "relu", 0.0, W, db, dx), ValueError, "must not overlap W"),
        ((x, y, W, y, "relu", 0.0, dW, db, dx), ValueError, "must not overlap y"),
        ((x, y, W, dy, "relu", 0.0, dW, db, [[0.0]]), TypeError, "dx: expected a numpy.ndarray"),
    ]
    ro = np.ones((4, 2), f)
    ro.flags.writeable = False
    cases.append(((x, y, W, ro, "relu", 0.0, dW, db, dx), ValueError, "dy: expected a writeable array"))
    for args, err, msg in cases:
        before = [a.copy() for a in (dy, dW, db, dx)]
        with pytest.raises(err, match=msg):
            call(*args)
        for a, b in zip((dy, dW, db, dx), before):  # a refused call writes nothing
            np.testing.assert_array_equal(a, b)


def test_bf16_bias_grad_is_column_sum_past_one_k_slice_and_one_column_block(bf16_path, threads):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1100, 3)).astype(np.float32)   # k = 1100: three KC slices
    dz = rng.standard_normal((1100, 4200)).astype(np.float32)  # n > NC = 4096
    dW, db = np.empty((3, 4200), np.float32), np.empty(4200, np.float32)
    _core.dense_bf16_backward(x, np.ones((1100, 4200), np.float32), np.zeros((3, 4200), np.float32), dz.copy(),
                              "identity", 0.0, dW, db, None)
    np.testing.assert_array_equal(db, ops.column_sum(dz))
    np.testing.assert_array_equal(dW, ops.matmul_bf16(x, dz, trans_a=True))


# ------------------------------------------------------- native == Python step
class _Storage(fastnn.callbacks.Callback):
    """Clears the bfloat16 storage plan at the start of training when ``storage`` is off
    (float32 storage between the mixed layers), and records at the end whether a layer
    holds a bfloat16 output buffer."""

    def __init__(self, storage):
        super().__init__()
        self.storage, self.stored = storage, None

    def on_train_begin(self, logs=None):
        if not self.storage:
            for layer in self.model.layers:
                layer._bf16_readers = ()

    def on_train_end(self, logs=None):
        self.stored = any(b.dtype == np.uint16 for layer in self.model.layers
                          for k, b in layer._bufs.items() if k[0] == "y16")


def _train(monkeypatch, native, build, loss, opt, y, storage):
    probe = _Storage(storage)
    state, history, n = _train_step(monkeypatch, native, build, loss, opt, y, "float32", callbacks=[probe])
    return state, history, n, probe.stored


def _frozen(layer):
    layer.trainable = False
    return layer


CASES = {
    "relu_adam": (lambda: [_dense(16, 0, activation="relu"), _dense(8, 1, activation="relu"),
                           _dense(4, 2, activation="softmax")],
                  "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, True),
    "tanh_leaky_sgd_logits": (lambda: [_dense(12, 0, activation="tanh"),
                                       _dense(8, 1, activation=fastnn.activations.LeakyReLU(0.2)),
                                       _dense(12, 3, activation="sigmoid"), _dense(4, 2)],
                              fastnn.losses.SparseCategoricalCrossentropy(from_logits=True),
                              lambda: O.SGD(0.05, momentum=0.9, nesterov=True), _IDS, True),
    "dropout": (lambda: [_dense(16, 0, activation="relu"), L.Dropout(0.3, seed=5), _dense(8, 1, activation="relu"),
                         _dense(8, 3, activation="relu"), _dense(4, 2, activation="softmax")],
                "sparse_categorical_crossentropy", lambda: O.AdamW(1e-2), _IDS, True),
    "batchnorm": (lambda: [_dense(16, 0), L.BatchNormalization(), L.Activation("relu"), _dense(8, 1),
                           L.BatchNormalization(dtype=MIXED), L.Activation("relu", dtype=MIXED),
                           _dense(4, 2, activation="softmax")],
                  "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, False),
    "float32_between": (lambda: [_dense(16, 0, activation="relu"), _dense(12, 1, "float32", activation="relu"),
                                 _dense(8, 3, activation="relu"), _dense(8, 4, activation="relu"), _dense(3, 2)],
                        "mse", lambda: O.Adam(1e-2), _ROWS, True),
    "frozen_no_bias": (lambda: [_frozen(_dense(16, 0, activation="relu")), _dense(8, 1, activation="elu",
                                                                                   use_bias=False),
                                _dense(3, 2, activation="relu")],
                       "mse", lambda: O.SGD(0.1), _ROWS, True),
}


@pytest.mark.parametrize("storage", [True, False], ids=["bf16_storage", "f32_storage"])
@pytest.mark.parametrize("case", list(CASES))
def test_native_mixed_step_is_bitwise_the_python_step(monkeypatch, bf16_path, threads, case, storage):
    check_native_equals_python(monkeypatch, CASES[case], storage)


def check_native_equals_python(monkeypatch, case, storage):
    """A (build, loss, optimizer, labels, stores bf16) case trained by the Python and the native
    step: every step native, bfloat16 storage alike, state and history bitwise; (native, python)."""
    build, loss, opt, y, stores = case
    ref = _train(monkeypatch, False, build, loss, opt, y, storage)
    nat = _train(monkeypatch, True, build, loss, opt, y, storage)
    assert ref[2] == 0 and nat[2] == 12  # 6 batches x 2 epochs, every one native
    assert nat[3] == ref[3] == (stores and storage)  # bfloat16 storage where the Python step has it
    assert sorted(nat[0]) == sorted(ref[0])
    for k in ref[0]:
        np.testing.assert_array_equal(nat[0][k], ref[0][k], err_msg=k)
    assert nat[1] == ref[1]
    return nat, ref
    assert np.isfinite(nat[1]["loss"]).all()


def test_a_policy_change_rebuilds_the_native_plan(monkeypatch):
    build, loss, opt, y, _ = CASES["relu_adam"]
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1")
    x = np.random.default_rng(0).normal(size=(32, 10)).astype(np.float32)
    models = []
    for native in ("1", "0"):
        monkeypatch.setenv("FASTNN_NATIVE_STEP", native)
        fastnn.utils.set_random_seed(0)
        m = fastnn.Sequential([L.Input((10,))] + build())
        m.compile(opt(), loss)
        m.fit(x, _IDS[:32], batch_size=16, epochs=1, verbose=0, seed=1)
        for layer in m.layers[:2]:
            layer.dtype_policy = "float32"  # layer 0 stops storing bf16, layer 1 computes float32
        m.fit(x, _IDS[:32], batch_size=16, epochs=1, verbose=0, seed=2)
        models.append(m)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_array_equal(a, b)
