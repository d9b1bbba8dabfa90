"""The native training step with BatchNormalization and Activation layers: bitwise the
same parameters, running statistics, gradients, optimizer state and losses as the Python
step (FASTNN_NATIVE_STEP=0), float32 and float64, 1 and 2 threads; what the kernels
refuse falls back to the Python step (which raises as before)."""
import numpy as np
import pytest

import fastnn
from fastnn import _core
from fastnn import layers as L
from fastnn import optimizers as O
from test_native_step import _IDS, _ROWS, _both, _dense


def _bn(**kw):
    return L.BatchNormalization(**kw)


def _uniform(low, high, seed):
    return fastnn.initializers.RandomUniform(low, high, seed=seed)


def _frozen(layer):
    layer.trainable = False
    return layer


SUPPORTED = {
    # the notes' placement: Dense (no activation) -> BatchNormalization -> Activation
    "dense_bn_relu": (lambda: [_dense(16, 0), _bn(), L.Activation("relu"), _dense(8, 1), _bn(),
                               L.Activation("relu"), _dense(4, 2, activation="softmax")],
                      "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "dense_act_bn_dropout": (lambda: [_dense(16, 0, activation="relu"), _bn(momentum=0.9, epsilon=1e-2),
                                      L.Dropout(0.3, seed=4), _dense(4, 1, activation="softmax")],
                             "sparse_categorical_crossentropy", lambda: O.AdamW(1e-2), _IDS),
    "no_center_no_scale": (lambda: [_dense(12, 0), _bn(center=False), L.Activation("tanh"), _dense(12, 1),
                                    _bn(scale=False), L.Activation(fastnn.activations.LeakyReLU(0.1)),
                                    _dense(3, 2)],
                           "mse", lambda: O.SGD(0.05, momentum=0.9, nesterov=True), _ROWS),
    # BatchNormalization first: without gamma and beta the backward stops above it
    "bn_first_no_params": (lambda: [_bn(center=False, scale=False), _dense(8, 0, activation="elu"),
                                    _dense(3, 1, activation="softmax")],
                           "categorical_crossentropy", lambda: O.Adam(1e-2), np.eye(3)[_IDS % 3]),
    "bn_first": (lambda: [_bn(), _dense(8, 0), L.Activation("swish"), _bn(), _dense(3, 1)],
                 "mse", lambda: O.Adam(1e-2), _ROWS),
    # Activation layers: an identity one (no node), and a softmax one fused into the loss
    "activation_layers": (lambda: [_dense(12, 0), L.Activation("linear"), L.Activation("selu"), _bn(),
                                   L.Activation("softplus"), _dense(4, 1), L.Activation("softmax")],
                          "sparse_categorical_crossentropy", lambda: O.SGD(0.1), _IDS),
    # frozen BatchNormalization: the moving statistics, gradient dy * gamma * invstd
    "frozen_bn": (lambda: [_dense(16, 0), _frozen(_bn(gamma_initializer=_uniform(0.5, 2.0, 1),
                                                      moving_variance_initializer=_uniform(0.5, 2.0, 2))),
                           L.Activation("relu"), _dense(4, 1, activation="softmax")],
                  "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS),
    "frozen_bn_first": (lambda: [_frozen(_bn(moving_mean_initializer=_uniform(-1.0, 1.0, 3))), _dense(8, 0, activation="relu"),
                                 _frozen(_bn()), _dense(3, 1)],
                        "mse", lambda: O.AdamW(1e-2), _ROWS),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", sorted(SUPPORTED))
def test_native_step_with_batchnorm_bitwise_equal_to_python_step(monkeypatch, threads, dtype, case):
    build, loss, opt, y = SUPPORTED[case]
    y = y.astype(dtype) if y.dtype.kind == "f" else y
    assert _both(monkeypatch, build, loss, opt, y, dtype, epochs=3) == 3 * 6  # every step native


def test_batchnorm_frozen_and_unfrozen_mid_epoch(monkeypatch):
    """A callback freezing a BatchNormalization, then unfreezing it, between steps: the
    plan follows (moving statistics, then batch statistics again), as the Python step."""
    class Toggle(fastnn.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch in (2, 4):
                self.model.layers[1].trainable = batch == 4
                self.model.layers[1].momentum = 0.5 if batch == 4 else 0.99

    def build():
        return [_dense(16, 0), _bn(), L.Activation("relu"), _dense(4, 1, activation="softmax")]

    n = _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float32",
              callbacks=[Toggle()])
    assert n == 12


def test_batchnorm_batch_sizes(monkeypatch, threads):
    """Batches of 2 rows (the least batch statistics take) and a last batch of 6 rows;
    features wider than a SIMD vector with a partial tail."""
    def build():
        return [_dense(37, 0), _bn(), L.Activation("relu"), _dense(4, 1, activation="softmax")]

    assert _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float64",
                 epochs=1, batch_size=2) == 45
    assert _both(monkeypatch, build, "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS, "float32",
                 epochs=1, batch_size=12) == 8


UNSUPPORTED = {
    # softmax as a hidden Activation layer: not a kernel of the native step
    "softmax_hidden": lambda: [_dense(8, 0), L.Activation("softmax"), _bn(), _dense(4, 1, activation="softmax")],
    # LayerNormalization over the last axis is a node (test_native_step_layernorm.py); another axis is not
    "layer_normalization_3d": lambda: [_dense(12, 0), L.Reshape((3, 4)), L.LayerNormalization(axis=1), L.Flatten(),
                                       _bn(), _dense(4, 1, activation="softmax")],
    # (a Dropout after an identity Activation, the first node, runs natively:
    # tests/test_native_step_input_dropout.py)
}


@pytest.mark.parametrize("what", sorted(UNSUPPORTED))
def test_unsupported_layers_next_to_batchnorm_fall_back(monkeypatch, what):
    n = _both(monkeypatch, UNSUPPORTED[what], "sparse_categorical_crossentropy", lambda: O.Adam(1e-2), _IDS,
              "float32")
    assert n == 0


def _fit_error(monkeypatch, native, build):
    monkeypatch.setenv("FASTNN_NATIVE_STEP", "1" if native else "0")
    x = np.random.default_rng(0).normal(size=(32, 10)).astype(np.float32)
    model = fastnn.Sequential([L.Input((10,))] + build(), dtype="float32")
    model.compile(O.Adam(1e-2), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError) as e:
        model.fit(x, _IDS[:32], batch_size=16, epochs=1, verbose=0, seed=3)
    return str(e.value)


def test_batchnorm_refused_by_the_kernel_raises_as_the_python_step(monkeypatch):
    """An epsilon that is 0 in float32, a momentum set out of range after construction, a
    frozen layer's negative moving variance: the native step does not run them (it falls
    back, or refuses before writing anything) and fit raises the Python step's error."""
    def tiny_eps():
        return [_dense(8, 0), _bn(epsilon=1e-50), _dense(4, 1, activation="softmax")]

    def bad_momentum():
        bn = _bn()
        bn.momentum = 1.5
        return [_dense(8, 0), bn, _dense(4, 1, activation="softmax")]

    def negative_variance():
        return [_dense(8, 0), _frozen(_bn(moving_variance_initializer=fastnn.initializers.Constant(-1.0))),
                _dense(4, 1, activation="softmax")]

    for build, match in ((tiny_eps, "eps"), (bad_momentum, "momentum"), (negative_variance, "running_var")):
        ref = _fit_error(monkeypatch, False, build)
        assert match in ref
        assert _fit_error(monkeypatch, True, build) == ref


def test_native_step_checks_its_batchnorm_and_activation_entries():
    f = np.float32
    m, n = 4, 3
    dense = (np.zeros((2, n), f), None, np.zeros((2, n), f), None, np.zeros((m, n), f), None, "identity", 0.0)
    sgd = {"momentum": 0.0, "nesterov": False}

    def bn(training=True, momentum=0.99, eps=1e-3, rows=m, width=n):
        v = lambda: np.zeros(width, f)  # noqa: E731
        return ("batchnorm", np.zeros((rows, width), f), training, np.zeros((rows, width), f), np.ones(width, f),
                v(), v(), np.ones(width, f), v(), v(), v(), v(), v(), v(), momentum, eps)

    def make(*entries, rows=m):
        return _core.NativeStep([dense, *entries], 0, "mse", np.zeros((rows, n), f), "sgd", sgd, [])

    make(bn(), ("activation", np.zeros((m, n), f), "relu", 0.0))  # accepted
    with pytest.raises(ValueError, match="unknown layer kind 'groupnorm'"):
        make(("groupnorm", np.zeros((m, n), f)))
    with pytest.raises(ValueError, match="'layernorm' 11-tuples, got 2"):
        make(("layernorm", np.zeros((m, n), f)))
    with pytest.raises(ValueError, match="'batchnorm' 16-tuples, got 15"):
        make(bn()[:-1])
    with pytest.raises(ValueError, match="eps"):
        make(bn(eps=1e-50))  # 0 in float32
    with pytest.raises(ValueError, match="momentum"):
        make(bn(momentum=1.5))
    with pytest.raises(ValueError, match="input width differs"):
        make(bn(width=n + 1))
    with pytest.raises(ValueError, match="at least 2 rows"):
        dense1 = dense[:4] + (np.zeros((1, n), f),) + dense[5:]
        _core.NativeStep([dense1, bn(rows=1)], 0, "mse", np.zeros((1, n), f), "sgd", sgd, [])
    with pytest.raises(ValueError, match="identity activation"):
        make(("activation", np.zeros((m, n), f), "linear", 0.0))
    with pytest.raises(TypeError, match="y:"):
        make(("activation", np.zeros((m, n)), "relu", 0.0))  # float64 in a float32 plan
    frozen = make(bn(training=False))
    frozen_entry = bn(training=False)
    step = make(frozen_entry)
    frozen_entry[7][1] = -1.0  # a negative running variance: refused before anything is written
    before = [np.array(a) for a in frozen_entry[1:2] + frozen_entry[3:14] if a is not None]
    with pytest.raises(ValueError, match="running_var: expected non-negative"):
        step.run(np.ones((m, 2), f), np.ones((m, n), f), 0.1, 1)
    after = [a for a in frozen_entry[1:2] + frozen_entry[3:14] if a is not None]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(frozen.run(np.ones((m, 2), f), np.ones((m, n), f), 0.1, 1))
