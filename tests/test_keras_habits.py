"""Keras habits of issue 16 outside fit: build((None, d)), fastnn.utils, lr=, activation
names, the Flatten hint, to_json / model_from_json, clone_model, load_model's places,
fashion_mnist.load_data, TensorBoard's places."""
import random
import warnings

import numpy as np
import pytest

import fastnn
from fastnn.layers import Dense, Input


def test_build_with_a_none_batch_dimension():
    m = fastnn.Sequential([Dense(4, activation="relu"), Dense(2)])
    m.build((None, 3))
    assert m.built and m.input_shape == (None, 3) and m.count_params() == 3 * 4 + 4 + 4 * 2 + 2
    with pytest.raises(ValueError, match="input_shape"):
        fastnn.Sequential([Dense(2)]).build((None, 0))


def test_to_categorical_as_keras():
    from fastnn.utils import to_categorical
    np.testing.assert_array_equal(to_categorical([0, 2, 1]), np.eye(3, dtype=np.float32)[[0, 2, 1]])
    assert to_categorical(np.array([[1], [0]]), 3).shape == (2, 3)  # a trailing 1 is replaced
    assert to_categorical(np.array([[1, 0]]), 2).shape == (1, 2, 2)
    assert to_categorical([1], 4).dtype == np.float32
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 2\)"):
        to_categorical([0, 2], 2)
    with pytest.raises(ValueError, match="integer class ids"):
        to_categorical([0.5])


def test_set_random_seed_makes_models_and_python_random_repeat():
    from fastnn.utils import set_random_seed
    out = []
    for _ in range(2):
        set_random_seed(7)
        out.append((fastnn.Sequential([Dense(3, input_dim=2)]).get_weights()[0], random.random(), np.random.rand()))
    assert np.array_equal(out[0][0], out[1][0]) and out[0][1:] == out[1][1:]
    with pytest.raises(ValueError, match="seed"):
        set_random_seed(-1)


def test_old_lr_keyword_warns_and_works():
    for cls in (fastnn.optimizers.SGD, fastnn.optimizers.Adam, fastnn.optimizers.RMSprop):
        with pytest.warns(DeprecationWarning, match="use learning_rate="):
            opt = cls(lr=0.123)
        assert opt.learning_rate == pytest.approx(0.123)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fastnn.optimizers.SGD(learning_rate=0.5, momentum=0.9).learning_rate == 0.5


def test_activation_names_are_case_insensitive_with_suggestions():
    assert Dense(2, activation="ReLU").activation.name == "relu"
    assert Dense(2, activation="Softmax").activation.name == "softmax"
    assert Dense(2, activation="LeakyReLU").activation.name == "leaky_relu"
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'.*did you mean 'relu'[ ?]"):
        Dense(2, activation="rleu")
    with pytest.raises(ValueError, match=r"did you mean 'sigmoid'[ ?]"):
        fastnn.activations.get("sigmod")


def test_image_shaped_input_into_a_dense_model_gets_a_flatten_hint():
    m = fastnn.Sequential([Input(784), Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    x = np.zeros((5, 28, 28), np.uint8)
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"flatten the inputs \(x.reshape\(len\(x\), -1\)\).*Flatten\(\)"):
        m.fit(x, np.zeros(5, int), verbose=0)
    with pytest.raises(ValueError, match="Flatten"):
        m.predict(x)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    with pytest.raises(ValueError, match="put a Flatten"):
        fastnn.Sequential([Dense(10)]).build((28, 28))


def test_json_clone_and_model_places():
    m = fastnn.Sequential([Input(3), Dense(4, activation="tanh"), Dense(1)], name="net")
    j = fastnn.models.model_from_json(m.to_json())
    assert type(j) is fastnn.Sequential and j.name == "net" and j.input_shape == (None, 3)
    assert [type(l).__name__ for l in j.layers] == ["Dense", "Dense"]
    assert not np.array_equal(j.get_weights()[0], m.get_weights()[0])  # fresh weights, as Keras
    with pytest.raises(ValueError, match="not a fastnn model description"):
        fastnn.models.model_from_json('{"class_name": "Sequential"}')
    c = fastnn.models.clone_model(m)
    assert c.count_params() == m.count_params()
    assert fastnn.models.load_model is fastnn.load_model
    assert fastnn.callbacks.TensorBoard is fastnn.TensorBoard
    assert fastnn.optimizers.schedules.CosineDecay is fastnn.schedules.CosineDecay
    from fastnn.callbacks import TensorBoard  # noqa: F401  (Keras's import line)


def test_fashion_mnist_load_data_returns_keras_arrays():
    (x, y), (xt, yt) = fastnn.datasets.fashion_mnist.load_data()
    assert x.dtype == y.dtype == xt.dtype == yt.dtype == np.uint8
    assert x.shape[1:] == (28, 28) and x.shape[0] == y.shape[0] and xt.shape[0] == yt.shape[0]
    assert x.shape[0] in (60000, 9000)


def test_fashion_mnist_without_files_falls_back_with_a_message(tmp_path, monkeypatch):
    from fastnn import datasets
    monkeypatch.setattr(datasets, "_DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "none"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match="subset bundled with fastnn"):
        (x, y), _ = datasets.fashion_mnist.load_data()
    assert x.shape == (9000, 28, 28) and x.dtype == np.uint8
