"""``layer.get_config()`` / ``Layer.from_config(config)`` with Keras 3's keys: a config Keras 3.15
writes loads in fastnn (Keras-only keys at the value fastnn computes are taken, others refused
naming the key), a fastnn config has Keras's keys and loads in Keras. The literal configs below
are what Keras 3.15 writes; the tests at the end compare with Keras itself when installed."""
import json
import os

import numpy as np
import pytest

import fastnn
from fastnn import initializers as I
from fastnn import layers as L


def _init(name, **config):
    return {"module": "keras.initializers", "class_name": name, "config": config, "registered_name": None}


_DT = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
_BASE = {"trainable": True, "dtype": _DT}
_GLOROT = _init("GlorotUniform", seed=None, input_axes=None, output_axes=None)
KERAS = {  # Keras 3.15's get_config() of the default layers (JSON)
    "Dense": {"name": "dense", **_BASE, "units": 3, "activation": "linear", "use_bias": True,
              "kernel_initializer": _GLOROT, "bias_initializer": _init("Zeros"), "kernel_regularizer": None,
              "bias_regularizer": None, "kernel_constraint": None, "bias_constraint": None,
              "quantization_config": None},
    "Dropout": {"name": "dropout", **_BASE, "rate": 0.2, "seed": None, "noise_shape": None},
    "BatchNormalization": {
        "name": "batch_normalization", **_BASE, "axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True,
        "scale": True, "beta_initializer": _init("Zeros"), "gamma_initializer": _init("Ones"),
        "moving_mean_initializer": _init("Zeros"), "moving_variance_initializer": _init("Ones"),
        "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None,
        "synchronized": False, "renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99},
    "LayerNormalization": {
        "name": "layer_normalization", **_BASE, "axis": -1, "epsilon": 0.001, "center": True, "scale": True,
        "rms_scaling": False, "beta_initializer": _init("Zeros"), "gamma_initializer": _init("Ones"),
        "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None},
    "Activation": {"name": "activation", **_BASE, "activation": "relu"},
    "InputLayer": {"batch_shape": [None, 4], "dtype": "float32", "sparse": False, "ragged": False,
                   "name": "input_layer", "optional": False},
    "Flatten": {"name": "flatten", **_BASE, "data_format": "channels_last"},
}
FASTNN = {"Dense": lambda: L.Dense(3), "Dropout": lambda: L.Dropout(0.2),
          "BatchNormalization": L.BatchNormalization, "LayerNormalization": L.LayerNormalization,
          "Activation": lambda: L.Activation("relu"), "InputLayer": lambda: L.InputLayer((4,)),
          "Flatten": L.Flatten}


@pytest.mark.parametrize("name", sorted(KERAS))
def test_keras_config_loads_and_fastnn_config_has_keras_keys(name):
    layer = getattr(L, name).from_config(json.loads(json.dumps(KERAS[name])))
    ours = FASTNN[name]().get_config()
    assert set(ours) == set(KERAS[name])
    again = getattr(L, name).from_config(layer.get_config()).get_config()
    assert again == layer.get_config()
    for k, v in KERAS[name].items():
        if k in ("name", "seed") or isinstance(v, dict):  # names are counted; a None seed is drawn
            continue
        assert json.loads(json.dumps(ours[k])) == v, k


REFUSED = [  # (class, key, a value fastnn cannot honour)
    ("Dense", "lora_rank", 4),
    ("Dense", "lora_alpha", 8),
    ("Dense", "quantization_config", {"mode": "int8"}),
    ("Dense", "activity_regularizer", {"class_name": "L2", "config": {"l2": 0.01}}),
    ("BatchNormalization", "activity_regularizer", "l2"),
    ("Dropout", "noise_shape", [None, 1]),
    ("BatchNormalization", "renorm", True),
    ("BatchNormalization", "synchronized", True),
    ("BatchNormalization", "renorm_clipping", {"rmax": 3}),
    ("BatchNormalization", "axis", 0),
    ("LayerNormalization", "rms_scaling", True),
    ("Flatten", "data_format", "channels_first"),
    ("InputLayer", "batch_shape", [32, 4]),
    ("InputLayer", "sparse", True),
    ("InputLayer", "ragged", True),
    ("InputLayer", "dtype", "int32"),
    ("InputLayer", "batch_size", 16),
]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: f"{c[0]}-{c[1]}" if isinstance(c, tuple) else str(c))
def test_keras_keys_fastnn_cannot_honour_are_refused_naming_the_key(case):
    name, key, value = case
    cfg = dict(KERAS[name], **{key: value})
    with pytest.raises(ValueError, match=key):
        getattr(L, name).from_config(cfg)


def test_equivalent_keras_values_are_taken():
    bn = L.BatchNormalization.from_config(dict(KERAS["BatchNormalization"], axis=[1], renorm_momentum=0.5))
    assert bn.get_config()["axis"] == -1
    assert L.Input(batch_shape=(None, 4)).shape == (4,)
    assert L.InputLayer(shape=(4,), batch_shape=[None, 4], dtype="float64").shape == (4,)
    with pytest.raises(ValueError, match="differ"):
        L.InputLayer(shape=(3,), batch_shape=(None, 4))
    with pytest.raises(ValueError, match="shape"):
        L.InputLayer()


def test_batchnormalization_gamma_beta_regularizer_and_constraint():
    """Keras's gamma/beta regularizers and constraints (in its config) are honoured."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype(np.float32), rng.normal(size=(64, 2)).astype(np.float32)
    fastnn.utils.set_random_seed(1)
    bn = L.BatchNormalization.from_config(dict(KERAS["BatchNormalization"], gamma_regularizer={
        "module": "keras.regularizers", "class_name": "L2", "config": {"l2": 0.5}, "registered_name": None},
        beta_constraint={"module": "keras.constraints", "class_name": "NonNeg", "config": {},
                         "registered_name": None}))
    assert bn.get_config()["gamma_regularizer"]["config"] == {"l2": 0.5}
    model = fastnn.Sequential([L.Input((4,)), bn, L.Dense(2)])
    model.compile(fastnn.optimizers.SGD(0.5), "mse")
    h = model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=0)
    gamma = model.layers[0].gamma.numpy()
    assert h.history["loss"][-1] > h.history["data_loss"][-1]  # the penalty is in the loss
    assert np.all(model.layers[0].beta.numpy() >= 0)
    np.testing.assert_allclose(fastnn.trainer.regularization(model, grads=False), 0.5 * np.sum(gamma ** 2),
                               rtol=1e-5)


def test_initializer_input_output_axes():
    cfg = _init("VarianceScaling", seed=0, scale=1.0, mode="fan_in", distribution="uniform", input_axes=[1],
                output_axes=[0])
    w = I.get(cfg)((400, 25))
    assert np.abs(w).max() <= np.sqrt(3.0 / 25) and np.abs(w).max() > 0.9 * np.sqrt(3.0 / 25)  # fan_in = 25
    assert I.get(_GLOROT).get_config() == {"seed": None, "input_axes": None, "output_axes": None}
    with pytest.raises(TypeError, match="input_axes"):
        I.HeNormal(input_axes="0")


def test_activation_written_as_its_name_unless_parameterized():
    assert L.Dense(2, activation="relu").get_config()["activation"] == "relu"
    assert L.Dense(2).get_config()["activation"] == "linear"
    c = L.Dense(2, activation=fastnn.activations.LeakyReLU(0.1)).get_config()["activation"]
    assert isinstance(c, dict) and c["alpha"] == 0.1
    assert L.Dense.from_config(L.Dense(2, activation=fastnn.activations.LeakyReLU(0.1)).get_config()) \
        .activation.alpha == 0.1


# -- against Keras itself -------------------------------------------------------------------
CASES = [("Dense", (3,), {}), ("Dense", (3,), dict(activation="relu", use_bias=False, kernel_regularizer="l2")),
         ("Dense", (3,), dict(activation="tanh", dtype="mixed_bfloat16")), ("Dropout", (0.2,), dict(seed=3)),
         ("BatchNormalization", (), dict(momentum=0.9, epsilon=1e-2, gamma_regularizer="l2")),
         ("LayerNormalization", (), dict(epsilon=1e-5)), ("Activation", ("tanh",), {}), ("Flatten", (), {}),
         ("Dense", (3,), dict(activation="elu", kernel_constraint="non_neg"))]


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "jax")
    return pytest.importorskip("keras")


@pytest.mark.parametrize("case", range(len(CASES)))
def test_configs_cross_load_with_keras(case):
    keras = _keras()
    name, args, kw = CASES[case]
    ref = getattr(keras.layers, name)(*args, **kw)
    kc = json.loads(json.dumps(ref.get_config()))
    ours = getattr(L, name).from_config(kc)
    back = getattr(keras.layers, name).from_config(json.loads(json.dumps(ours.get_config())))
    assert json.dumps(back.get_config(), sort_keys=True) == json.dumps(ref.get_config(), sort_keys=True)
    # the same computation on the same weights (inference)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    ref.build((None, 4))
    for w in ref.weights:  # moving statistics away from their initial values
        w.assign(np.random.default_rng(len(w.name)).uniform(0.5, 1.5, size=w.shape).astype(np.float32))
    want = np.asarray(ref(x, training=False), dtype=np.float32)
    ours(x[:1])  # built from the shape
    ours.set_weights([np.asarray(w) for w in ref.weights])
    got = ours(x, training=False)
    tol = 2e-2 if "mixed" in str(kw.get("dtype")) else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _entry(name):
    return {"module": "keras.layers", "class_name": name, "config": KERAS[name], "registered_name": None}


def test_keras_sequential_config_loads():
    """Keras 3's Sequential.get_config(): its InputLayer first, the DTypePolicy dict, trainable."""
    cfg = {"name": "sequential", "trainable": True, "dtype": _DT,
           "layers": [_entry("InputLayer"), dict(_entry("Dense"), build_config={"input_shape": [None, 4]}),
                      _entry("Dropout"), _entry("BatchNormalization")]}
    m = fastnn.Sequential.from_config(json.loads(json.dumps(cfg)))
    assert m.built and m.dtype == np.float32 and m.output_shape == (None, 3)
    assert [type(l).__name__ for l in m.layers] == ["Dense", "Dropout", "BatchNormalization"]
    frozen = fastnn.Sequential.from_config(dict(cfg, trainable=False, dtype=dict(_DT, config={"name": "float64"})))
    assert frozen.dtype == np.float64 and not frozen.trainable and not any(l.trainable for l in frozen.layers)


def test_keras_sequential_config_loads_with_keras():
    keras = _keras()
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                          keras.layers.BatchNormalization(), keras.layers.Dropout(0.1),
                          keras.layers.Dense(2, activation="softmax")])
    f = fastnn.Sequential.from_config(json.loads(json.dumps(k.get_config())))
    f.set_weights(k.get_weights())
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(f.predict(x), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_prelu_name_and_keras_keys():
    p = L.PReLU()
    assert p.name.startswith("p_re_lu")  # Keras 3's default name (was "pre_lu")
    c = p.get_config()
    assert c["alpha_constraint"] is None and c["shared_axes"] is None
    with pytest.raises(ValueError, match="shared_axes"):
        L.PReLU.from_config(dict(c, shared_axes=[1]))
    with pytest.raises(ValueError, match="noise_shape"):
        L.AlphaDropout.from_config({"rate": 0.1, "noise_shape": [None, 1]})
    with pytest.raises(ValueError, match="data_format"):
        L.RandomFlip.from_config({"mode": "horizontal", "data_format": "channels_first"})


@pytest.mark.parametrize("make", [lambda k: k.PReLU(), lambda k: k.AlphaDropout(0.1, seed=3),
                                  lambda k: k.RandomFlip("horizontal", seed=3),
                                  lambda k: k.RandomTranslation(0.1, 0.2, seed=3), lambda k: k.GaussianNoise(0.1, seed=2)])
def test_more_configs_cross_load_with_keras(make):
    keras = _keras()
    ref = make(keras.layers)
    name = type(ref).__name__
    ours = getattr(L, name).from_config(json.loads(json.dumps(ref.get_config())))
    back = getattr(keras.layers, name).from_config(json.loads(json.dumps(ours.get_config())))
    got, want = back.get_config(), ref.get_config()
    for k in ("height_factor", "width_factor"):  # fastnn writes a symmetric factor f as [-f, f] (equivalent)
        if isinstance(want.get(k), float):
            assert list(got.pop(k)) == [-want[k], want.pop(k)]
    assert got == want
