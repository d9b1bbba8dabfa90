"""Models: fit modes, freezing, summary, weights, errors, progress output."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn import regularizers


def blobs(n=300, d=4, classes=3, seed=0):
    r = np.random.default_rng(seed)
    centers = r.normal(scale=3.0, size=(classes, d))
    y = r.integers(0, classes, n)
    x = (centers[y] + r.normal(size=(n, d))).astype(np.float32)
    return x, y


def mlp(d=4, classes=3, hidden=16, **kw):
    fastnn.set_random_seed(0)
    return fastnn.Sequential([L.Input(d), L.Dense(hidden, activation="relu"),
                              L.Dense(classes, activation="softmax")], **kw)


@pytest.mark.parametrize("batch_size", [1, 32, "full"])
def test_online_minibatch_and_full_batch_all_learn(batch_size):
    x, y = blobs()
    m = mlp()
    m.compile(fastnn.optimizers.Adam(0.05 if batch_size == "full" else 0.01), "sparse_categorical_crossentropy",
              ["accuracy"])
    epochs = {1: 2, 32: 10, "full": 60}[batch_size]
    h = m.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, seed=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.9
    assert m.optimizer.iterations == epochs * {1: 300, 32: 10, "full": 1}[batch_size]


def test_last_partial_batch_is_used():
    x, y = blobs(n=70)
    m = mlp()
    m.compile("sgd", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert m.optimizer.iterations == 3  # 32 + 32 + 6


def test_no_shuffle_visits_rows_in_order_and_is_deterministic():
    x, y = blobs()
    runs = []
    for _ in range(2):
        m = mlp()
        m.compile("adam", "sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
        runs.append(m.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_seeded_shuffle_is_reproducible_and_differs_by_seed():
    x, y = blobs()
    out = {}
    for seed in (1, 1, 2):
        m = mlp()
        m.compile("adam", "sparse_categorical_crossentropy")
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=seed)
        out.setdefault(seed, []).append(m.get_weights()[0])
    np.testing.assert_array_equal(out[1][0], out[1][1])
    assert not np.array_equal(out[1][0], out[2][0])


def test_functional_model_equals_sequential():
    x, y = blobs()
    fastnn.set_random_seed(0)
    inp = L.Input(4)
    h = L.Dense(16, activation="relu")(inp)
    out = L.Dense(3, activation="softmax")(h)
    f = fastnn.Model(inp, out)
    s = mlp()
    s.set_weights(f.get_weights())
    for m in (f, s):
        m.compile(fastnn.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
        m.fit(x, y, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(f.get_weights(), s.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_predict_gives_probabilities_and_classes():
    x, y = blobs()
    m = mlp()
    m.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=10, verbose=0, seed=0)
    p = m.predict(x)
    assert p.shape == (300, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(m.predict_classes(x), p.argmax(1))
    loss, acc = m.evaluate(x, y)
    assert acc == pytest.approx(np.mean(p.argmax(1) == y))
    ref = -np.mean(np.log(p[np.arange(300), y]))
    assert loss == pytest.approx(ref, rel=1e-4)


def test_binary_output_and_accuracy_auto_chosen():
    x, y = blobs(classes=2)
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([L.Dense(8, activation="tanh", input_dim=4), L.Dense(1, activation="sigmoid")])
    m.compile(fastnn.optimizers.Adam(0.02), "binary_crossentropy", ["accuracy"])
    h = m.fit(x, y, epochs=20, verbose=0, seed=0)
    assert h.history["accuracy"][-1] > 0.95
    assert type(m._make_metrics()[0]).__name__ == "BinaryAccuracy"
    assert set(np.unique(m.predict_classes(x))) <= {0, 1}


def test_categorical_one_hot_with_mse_and_mae_metrics():
    x, y = blobs()
    m = mlp()
    m.compile(fastnn.optimizers.Adam(0.01), "categorical_crossentropy", ["accuracy", "mse", "mae"])
    h = m.fit(x, np.eye(3)[y], epochs=3, verbose=0, seed=0)
    assert set(h.history) == {"loss", "accuracy", "mse", "mae"}
    p = m.predict(x)
    logs = m.evaluate(x, np.eye(3)[y], return_dict=True)
    assert logs["mse"] == pytest.approx(np.mean((p - np.eye(3)[y]) ** 2), rel=1e-4)
    assert logs["mae"] == pytest.approx(np.mean(np.abs(p - np.eye(3)[y])), rel=1e-4)


def test_regularized_loss_includes_penalty_and_data_loss_is_reported():
    x, y = blobs()
    m = mlp()
    m.compile("sgd", "sparse_categorical_crossentropy", regularizer=regularizers.L2(0.01))
    logs = m.evaluate(x, y, return_dict=True)
    penalty = 0.01 * sum(float((w.astype(np.float64) ** 2).sum()) for w in (m.layers[0].vars["kernel"],
                                                                             m.layers[1].vars["kernel"]))
    assert logs["loss"] == pytest.approx(logs["data_loss"] + penalty, rel=1e-5)
    h = m.fit(x, y, epochs=1, verbose=0, validation_split=0.2)
    assert {"loss", "data_loss", "val_loss", "val_data_loss"} <= set(h.history)
    assert h.history["loss"][0] > h.history["data_loss"][0]


def test_freeze_then_unfreeze_transfer_learning():
    x, y = blobs()
    a = mlp(hidden=16)
    a.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    a.fit(x, y, epochs=2, verbose=0)
    base = a.layers[0]
    base.trainable = False
    b = fastnn.Sequential([L.Input(4), base, L.Dense(8, activation="relu"), L.Dense(2, activation="softmax")])
    frozen = base.get_weights()
    b.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    t, nt = b._param_counts()
    assert (t, nt) == (8 * 16 + 8 + 8 * 2 + 2, 4 * 16 + 16)
    b.fit(x, y % 2, epochs=3, verbose=0)
    for w0, w1 in zip(frozen, base.get_weights()):
        np.testing.assert_array_equal(w0, w1)  # bitwise unchanged
    head_before = b.layers[1].get_weights()[0]
    base.trainable = True
    b.compile(fastnn.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", ["accuracy"])
    b.fit(x, y % 2, epochs=1, verbose=0)
    assert not np.array_equal(frozen[0], base.get_weights()[0])
    assert not np.array_equal(head_before, b.layers[1].get_weights()[0])
    # the layer is shared: model a sees the fine-tuned weights
    np.testing.assert_array_equal(a.layers[0].get_weights()[0], base.get_weights()[0])


def test_frozen_layer_in_the_middle_keeps_its_weights():
    x, y = blobs()
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([L.Input(4), L.Dense(8, activation="relu"), L.Dense(8, activation="relu"),
                           L.Dense(3, activation="softmax")])
    m.layers[1].trainable = False
    before = m.get_weights()
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    after = m.get_weights()
    np.testing.assert_array_equal(before[2], after[2])
    np.testing.assert_array_equal(before[3], after[3])
    assert not np.array_equal(before[0], after[0]) and not np.array_equal(before[4], after[4])


def test_batchnorm_frozen_runs_in_inference_mode():
    x, y = blobs()
    fastnn.set_random_seed(0)
    m = fastnn.Sequential([L.Input(4), L.Dense(8), L.BatchNormalization(), L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    bn = m.layers[1]
    bn.trainable = False
    stats = bn.get_weights()
    m.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(stats, bn.get_weights()):
        np.testing.assert_array_equal(a, b)  # moving statistics and gamma/beta untouched


def test_batchnorm_moving_statistics_follow_keras_convention():
    r = np.random.default_rng(0)
    x = r.normal(2.0, 3.0, size=(64, 2)).astype(np.float32)
    m = fastnn.Sequential([L.Input(2), L.BatchNormalization(momentum=0.9)])
    m.compile(fastnn.optimizers.SGD(1e-9), "mse")
    m.fit(x, np.zeros((64, 2), np.float32), epochs=1, batch_size="full", verbose=0)
    _, _, mean, var = m.layers[0].get_weights()
    np.testing.assert_allclose(mean, 0.1 * x.mean(0), rtol=1e-4)
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(0, ddof=1), rtol=1e-4)


def test_dropout_only_in_training_and_scaled():
    m = fastnn.Sequential([L.Input(1000), L.Dropout(0.25, seed=3)])
    x = np.ones((4, 1000), np.float32)
    np.testing.assert_array_equal(m.predict(x), x)
    y = m.layers[0].forward(x, training=True).copy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.03
    y2 = m.layers[0].forward(x, training=True)
    assert not np.array_equal(y, y2)  # a fresh mask every step


def test_summary_counts(capsys):
    m = fastnn.Sequential([L.Input(784), L.Dense(512, activation="relu"), L.BatchNormalization(),
                           L.Dense(10, activation="softmax")])
    m.summary()
    out = capsys.readouterr().out
    assert "Total params: 409,098" in out
    assert "Trainable params: 408,074" in out
    assert "Non-trainable params: 1,024" in out
    assert "(None, 512)" in out and "dense" in out and "BatchNormalization" in out


def test_get_set_weights_and_clone_model():
    m = mlp()
    w = m.get_weights()
    assert [a.shape for a in w] == [(4, 16), (16,), (16, 3), (3,)]
    c = fastnn.clone_model(m)
    assert [a.shape for a in c.get_weights()] == [a.shape for a in w]
    assert c.layers[0] is not m.layers[0]
    c.set_weights(w)
    x, _ = blobs()
    np.testing.assert_array_equal(c.predict(x), m.predict(x))
    with pytest.raises(ValueError, match="expected shape"):
        c.set_weights([np.zeros((3, 16))] + w[1:])
    np.testing.assert_array_equal(c.get_weights()[0], w[0])  # nothing half-updated


def test_float64_model():
    x, y = blobs()
    m = mlp(dtype="float64")
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    assert m.predict(x).dtype == np.float64 and m._params.dtype == np.float64


def test_one_arena_views():
    m = mlp()
    for layer in m.layers:
        for v in layer.vars.values():
            assert np.shares_memory(v, m._params)
    assert m._params.size == m.count_params()


def test_verbose_2_prints_the_course_notes_line(capsys):
    x, y = blobs()
    m = mlp()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=2, verbose=2, validation_data=(x[:50], y[:50]))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    import re
    assert re.fullmatch(r"epoch 001 loss: \d\.\d{3} accuracy: \d\.\d{3} val_loss: \d\.\d{3} "
                        r"val_accuracy: \d\.\d{3}", lines[0])


def test_verbose_1_bar_and_verbose_0_silent(capsys):
    x, y = blobs()
    m = mlp()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    m.fit(x, y, epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "10/10 [" in out and "accuracy" in out


# --------------------------------------------------------------------------- errors

def compiled():
    m = mlp()
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return m


def test_fit_before_compile():
    x, y = blobs()
    with pytest.raises(ValueError, match="compile the model first"):
        mlp().fit(x, y)


def test_x_y_length_mismatch():
    x, y = blobs()
    with pytest.raises(ValueError, match="lengths differ"):
        compiled().fit(x, y[:-1], verbose=0)


def test_labels_out_of_range():
    x, y = blobs()
    m = compiled()
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"out of range.*\[0, 3\)"):
        m.fit(x, y + 1, verbose=0)
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert m.optimizer.iterations == 0


def test_wrong_input_width():
    x, y = blobs()
    with pytest.raises(ValueError, match=r"expected shape \(n, 4\)"):
        compiled().fit(x[:, :3], y, verbose=0)
    with pytest.raises(ValueError, match="wrong input width"):
        compiled().predict(x[:, :3])


def test_nan_in_x():
    x, y = blobs()
    x[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        compiled().fit(x, y, verbose=0)


def test_bad_validation_data_leaves_model_untouched():
    x, y = blobs()
    m = compiled()
    before = m.get_weights()
    with pytest.raises(ValueError):
        m.fit(x, y, verbose=0, validation_data=(x[:10], y[:9]))
    np.testing.assert_array_equal(before[0], m.get_weights()[0])


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ValueError, match="known: linear, sigmoid, tanh, relu"):
        L.Dense(3, activation="relux")
    with pytest.raises(ValueError, match="known: .*he_normal"):
        L.Dense(3, kernel_initializer="he")
    with pytest.raises(ValueError, match="known: .*sparse_categorical_crossentropy"):
        mlp().compile("adam", "crossentropy")
    with pytest.raises(ValueError, match="known: sgd"):
        mlp().compile("adamm", "mse")
    with pytest.raises(ValueError, match="known: accuracy"):
        mlp().compile("adam", "mse", metrics=["acuracy"])
    m = mlp()
    with pytest.raises(ValueError):
        m.compile("adam", "mse", metrics=["bogus"])
    assert not m.compiled  # nothing half-set


def test_categorical_crossentropy_with_integer_labels_says_what_to_use():
    x, y = blobs()
    m = mlp()
    m.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        m.fit(x, y, verbose=0)


def test_batchnorm_with_a_batch_of_one_is_refused_up_front():
    x, y = blobs(n=65)
    m = fastnn.Sequential([L.Input(4), L.Dense(4), L.BatchNormalization(), L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="at least 2"):
        m.fit(x, y, batch_size=32, verbose=0)
    assert m.optimizer.iterations == 0


@pytest.mark.parametrize("batchnorm", [False, True])
def test_training_steps_match_pytorch(batchnorm):
    """Same weights, same batches: fastnn's Adam steps land where PyTorch's do (float64)."""
    torch = pytest.importorskip("torch")
    x, y = blobs(n=64)
    x = x.astype(np.float64)
    fastnn.set_random_seed(0)
    layers = [L.Input(4), L.Dense(8, activation="relu")]
    if batchnorm:
        layers.append(L.BatchNormalization())
    layers += [L.Dense(3, activation="softmax")]
    m = fastnn.Sequential(layers, dtype="float64")
    m.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    W1, b1 = m.layers[0].get_weights()
    W2, b2 = m.layers[-1].get_weights()
    tl = [torch.nn.Linear(4, 8).double(), torch.nn.ReLU()]
    if batchnorm:
        tl.append(torch.nn.BatchNorm1d(8, eps=1e-3, momentum=0.01).double())
    tl.append(torch.nn.Linear(8, 3).double())
    net = torch.nn.Sequential(*tl)
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(W1.T)); net[0].bias.copy_(torch.from_numpy(b1))
        net[-1].weight.copy_(torch.from_numpy(W2.T)); net[-1].bias.copy_(torch.from_numpy(b2))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, eps=1e-7)
    for s in range(0, 64, 16):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x[s:s + 16])), torch.from_numpy(y[s:s + 16])).backward()
        opt.step()
    m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(m.layers[0].get_weights()[0], net[0].weight.detach().numpy().T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.layers[-1].get_weights()[0], net[-1].weight.detach().numpy().T, rtol=1e-9, atol=1e-12)
    if batchnorm:
        bn = m.layers[1].get_weights()
        np.testing.assert_allclose(bn[2], net[2].running_mean.numpy(), rtol=1e-9)
        np.testing.assert_allclose(bn[3], net[2].running_var.numpy(), rtol=1e-9)


def test_validation_logs_equal_evaluate():
    x, y = blobs()
    m = compiled()
    h = m.fit(x[:200], y[:200], epochs=1, verbose=0, validation_data=(x[200:], y[200:]))
    loss, acc = m.evaluate(x[200:], y[200:])
    assert h.history["val_loss"][0] == pytest.approx(loss) and h.history["val_accuracy"][0] == pytest.approx(acc)


def test_validation_split_holds_out_the_last_rows():
    x, y = blobs(n=100)
    m = compiled()
    h = m.fit(x, y, epochs=1, batch_size=10, verbose=0, validation_split=0.3)
    assert m.optimizer.iterations == 7
    assert h.history["val_loss"][0] == pytest.approx(m.evaluate(x[70:], y[70:])[0])


def test_clone_functional_model_and_pop():
    inp = L.Input(3)
    m = fastnn.Model(inp, L.Dense(2)(L.Dense(4, activation="relu")(inp)))
    c = fastnn.clone_model(m)
    assert type(c) is fastnn.Model and c.count_params() == m.count_params()
    s = mlp()
    s.pop()
    assert s.count_params() == 4 * 16 + 16 and len(s.layers) == 1


@pytest.mark.parametrize("with_bn_dropout", [False, True])
def test_training_steps_allocate_no_batch_sized_arrays(with_bn_dropout):
    """After the first fit, training steps reuse every buffer: the traced peak of a
    second fit stays far below one (batch, 256) activation (256 KiB)."""
    import tracemalloc
    rng = np.random.default_rng(0)
    x = rng.random((2048, 32)).astype(np.float32)
    y = rng.integers(0, 10, 2048)
    layers = [L.Input(32), L.Dense(256, activation="relu")]
    if with_bn_dropout:
        layers += [L.BatchNormalization(), L.Dropout(0.2)]
    layers += [L.Dense(256, activation="tanh"), L.Dense(10, activation="softmax")]
    model = fastnn.Sequential(layers)
    model.compile(fastnn.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=256, verbose=0)
    tracemalloc.start()
    try:
        model.fit(x, y, epochs=2, batch_size=256, verbose=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 128 * 1024, f"traced peak {peak} bytes during training steps"
