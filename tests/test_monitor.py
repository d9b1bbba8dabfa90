import numpy as np
import pytest


import fastnn  # noqa: E402
from fastnn.layers import Dense  # noqa: E402
from fastnn.monitor import (TrainingMonitor, activation_stats, layer_outputs,  # noqa: E402
                            saturation_fraction)


@pytest.fixture
def xy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def test_layer_outputs_match_a_numpy_forward_pass():
    rng = np.random.default_rng(1)
    m = fastnn.Sequential([Dense(6, activation="tanh", input_dim=4), Dense(3, activation="relu")])
    x = rng.normal(size=(5, 4)).astype(np.float32)
    out = layer_outputs(m, x)
    (w1, b1, w2, b2) = m.get_weights()
    h = np.tanh(x @ w1 + b1)
    np.testing.assert_allclose(out[m.layers[0].name], h, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[m.layers[1].name], np.maximum(h @ w2 + b2, 0), rtol=1e-4,
                               atol=1e-5)


def test_saturation_and_dead_relu_are_measured():
    assert saturation_fraction(np.array([0.0, 0.99, -0.99, 0.5]), "tanh") == 0.5
    assert saturation_fraction(np.array([0.01, 0.5, 0.995, 0.4]), "sigmoid") == 0.5
    assert np.isnan(saturation_fraction(np.ones(3), "relu"))
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=3)])
    w, b = m.get_weights()
    b[:4] = -100.0  # four units that never fire: dead
    m.set_weights([w, b])
    s = activation_stats(m, np.random.default_rng(0).normal(size=(50, 3)))[m.layers[0].name]
    assert s["dead"] == 0.5 and s["zero"] >= 0.5


def test_large_init_saturates_tanh_and_small_init_shrinks_std():
    x = np.random.default_rng(0).normal(size=(200, 100)).astype(np.float32)
    big = fastnn.Sequential([Dense(100, activation="tanh", input_dim=100,
                                   kernel_initializer=fastnn.initializers.RandomNormal(stddev=1.0))])
    small = fastnn.Sequential([Dense(100, activation="tanh", input_dim=100,
                                     kernel_initializer=fastnn.initializers.RandomNormal(stddev=0.01))])
    sb = activation_stats(big, x)[big.layers[0].name]
    ss = activation_stats(small, x)[small.layers[0].name]
    assert sb["saturated"] > 0.7 and sb["std"] > 0.9
    assert ss["saturated"] == 0 and ss["std"] < 0.15


def test_update_ratio_is_lr_times_gradient_over_weight_norm_for_plain_sgd(xy):
    x, y = xy
    lr = 0.05
    m = fastnn.Sequential([Dense(16, activation="relu", input_dim=10),
                           Dense(2, activation="softmax")])
    m.compile(fastnn.optimizers.SGD(learning_rate=lr), "sparse_categorical_crossentropy")
    mon = TrainingMonitor(x[:64])
    hist = m.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[mon], shuffle=False)
    steps = hist.monitor
    assert steps["step"] == list(range(8))
    name = f"{m.layers[0].name}/kernel"
    ratio = np.array(steps[f"update_ratio/{name}"])
    # W_after = W_before - lr g, so ||dW|| = lr ||g||
    expected = lr * np.array(steps[f"grad_norm/{name}"]) / np.array(steps[f"weight_norm/{name}"])
    np.testing.assert_allclose(ratio, expected, rtol=2e-3)
    assert np.all(ratio > 0)


def test_monitor_writes_per_epoch_means_into_history(xy):
    x, y = xy
    m = fastnn.Sequential([Dense(16, activation="tanh", input_dim=10), Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = m.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[TrainingMonitor(every=3)])
    h = hist.history
    first = m.layers[0].name
    for key in (f"act_mean/{first}", f"act_std/{first}", f"saturated/{first}",
                f"grad_norm/{first}/kernel", f"update_ratio/{first}/kernel"):
        assert len(h[key]) == 3, key
    assert len(hist.monitor["step"]) == 8  # steps 0, 3, ..., 21 of 24
    assert hist.monitor["step"][:3] == [0, 3, 6]
    per_step = np.array(hist.monitor[f"act_std/{first}"])
    assert np.all(per_step > 0) and np.all(np.isfinite(per_step))


def test_plots_write_pngs(tmp_path, xy):
    pytest.importorskip("matplotlib")
    from fastnn import plots
    x, y = xy
    m = fastnn.Sequential([Dense(8, activation="relu", input_dim=10), Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = m.fit(x, y, epochs=2, batch_size=64, verbose=0, validation_split=0.25,
                 callbacks=[TrainingMonitor()])
    plots.learning_curves(hist, tmp_path / "lc.png")
    plots.activation_histograms(layer_outputs(m, x), tmp_path / "hist.png")
    plots.update_ratio_curves(hist.monitor, tmp_path / "ur.png")
    for f in ("lc.png", "hist.png", "ur.png"):
        data = (tmp_path / f).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_monitor_argument_errors():
    with pytest.raises(ValueError, match="every"):
        TrainingMonitor(every=0)
    with pytest.raises(ValueError, match="probe"):
        TrainingMonitor(np.zeros(5))
    with pytest.raises(TypeError, match="model"):
        activation_stats("not a model", np.zeros((2, 2)))


def test_initialization_example_reproduces_the_notes_table():
    """examples/01_initialization.py: the qualitative table of the course notes."""
    import importlib.util
    import os
    import sys
    examples = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
    spec = importlib.util.spec_from_file_location(
        "init_example", os.path.join(examples, "01_initialization.py"))
    ex = importlib.util.module_from_spec(spec)
    sys.path.insert(0, examples)  # for the example's `from _common import ...`
    try:
        spec.loader.exec_module(ex)
    finally:
        sys.path.remove(examples)
    assert ex.N == 10_000  # the notes' sample count; the test uses 1,000 to stay fast
    x = np.random.default_rng(0).standard_normal((1000, ex.UNITS)).astype(np.float32)
    std = {label: np.array([o.std() for o in ex.fastnn_outputs(x, act, init)])
           for label, act, init, _ in ex.SETUPS}
    small, big = std["tanh, W = 0.01 randn"], std["tanh, W = 1.0 randn"]
    assert 0.18 < small[0] < 0.25 and small[9] < 1e-5          # shrinks to zero
    assert np.all(np.diff(small) < 0)
    assert np.all(big > 0.95)                                  # saturated at -1/+1
    for init in ("Xavier", "Glorot uniform", "Glorot normal fan_avg"):
        tanh, relu = std[f"tanh, {init}"], std[f"relu, {init}"]
        assert 0.55 < tanh[0] < 0.7 and 0.18 < tanh[9] < 0.3  # tanh: ~0.6 -> ~0.2
        assert relu[9] < 0.1 * relu[0]                         # ReLU: halves per layer
    he = std["relu, He"]
    assert 0.6 < he[9] / he[0] < 1.6                           # He + ReLU: kept
    # the NumPy twins draw the same distributions
    rng = np.random.default_rng(0)
    for label, _, _, weights in ex.SETUPS:
        if "Glorot uniform" in label:
            w = weights(rng, 500)
            assert abs(np.abs(w).max() - np.sqrt(6 / 1000)) < 1e-3 and abs(w.std() - np.sqrt(1 / 500)) < 1e-3


def test_model_activation_stats_method_matches_monitor():
    import numpy as np
    import fastnn
    from fastnn.layers import Dense
    from fastnn.monitor import activation_stats
    m = fastnn.Sequential([Dense(30, activation="relu", input_dim=8), Dense(3)])
    x = np.random.default_rng(0).normal(size=(50, 8))
    a, b = m.activation_stats(x), activation_stats(m, x)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k]["mean"] == b[k]["mean"] and a[k]["std"] == b[k]["std"]


def test_compare_runs_draws_one_line_per_run_in_each_panel(tmp_path):
    pytest.importorskip("matplotlib")
    from fastnn import plots
    runs = {"a": {"loss": [1.0, 0.5, 0.4], "val_accuracy": [0.5, 0.6, 0.7]},
            "b": {"loss": [1.2, 0.9], "val_accuracy": [0.4, 0.45]}}
    fig = plots.compare_runs(runs, ("loss", "val_accuracy"), tmp_path / "cmp.png", log_scale=True)
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "val_accuracy"]
    for ax, key in zip(fig.axes, ("loss", "val_accuracy")):
        assert [list(line.get_ydata()) for line in ax.get_lines()] == [runs["a"][key], runs["b"][key]]
    assert fig.axes[0].get_yscale() == "log"
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = plots.compare_runs({"x": [3, 2, 1]}, "training loss")  # a per-epoch list is one quantity
    assert fig.axes[0].get_ylabel() == "training loss" and list(fig.axes[0].get_lines()[0].get_ydata()) == [3, 2, 1]
    with pytest.raises(ValueError, match="val_loss"):
        plots.compare_runs(runs, "val_loss")
    with pytest.raises(ValueError, match="runs"):
        plots.compare_runs({}, "loss")
    with pytest.raises(ValueError, match="one quantity"):
        plots.compare_runs({"x": [1, 2]}, ("loss", "val_loss"))


# -- issue 12: the notes' update/weight ratio, gradient flow at initialization -----------
def test_update_ratio_guidance_is_the_notes_1e_2(tmp_path):
    pytest.importorskip("matplotlib")
    from fastnn import monitor, plots
    assert monitor.HEALTHY_UPDATE_RATIO == 1e-2 and "about\n1e-2" in monitor.__doc__
    fig = plots.update_ratio_curves({"dense/kernel": [1e-2, 5e-3]}, tmp_path / "ur.png")
    flat = [ln for ln in fig.axes[0].lines if len(set(ln.get_ydata())) == 1]
    assert [ln.get_ydata()[0] for ln in flat] == [1e-2]


def test_gradient_flow_matches_numpy_softmax_regression_and_leaves_the_model_as_it_was(tmp_path):
    pytest.importorskip("matplotlib")
    from fastnn.layers import BatchNormalization
    from fastnn.monitor import gradient_flow
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    m = fastnn.Sequential([Dense(3, activation="softmax", input_dim=5, bias_initializer="ones")],
                          dtype="float64")
    m.compile("sgd", "sparse_categorical_crossentropy")
    W, b = m.get_weights()
    z = x @ W + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(40), y] -= 1
    flow = gradient_flow(m, x, y, path=tmp_path / "g.png")
    name = m.layers[0].name
    np.testing.assert_allclose(flow.grads[f"{name}/kernel"], x.T @ p / 40, rtol=1e-10)
    np.testing.assert_allclose(flow[f"{name}/bias"]["norm"], np.linalg.norm(p.sum(0) / 40), rtol=1e-10)
    assert flow[f"{name}/kernel"]["ratio"] == pytest.approx((x.T @ p / 40).std() / W.std())
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG" and flow.figure is not None
    # BatchNorm's moving statistics are not changed by the measurement
    bn = fastnn.Sequential([Dense(4, input_dim=5), BatchNormalization(), Dense(3, activation="softmax")])
    bn.compile("sgd", "sparse_categorical_crossentropy")
    before = bn.get_weights()
    gradient_flow(bn, x, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, bn.get_weights()))


def test_gradient_flow_shows_vanishing_gradients_of_a_tiny_init():
    """std 0.01 in 5 tanh layers: the backward signal (the biases' gradient) shrinks about
    0.01 * sqrt(50) per layer toward the input; with Glorot it stays level."""
    from fastnn.monitor import gradient_flow
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 20)), rng.integers(0, 3, 64)

    def bias_norms(init):
        m = fastnn.Sequential([Dense(50, activation="tanh", input_dim=20, kernel_initializer=init)] +
                              [Dense(50, activation="tanh", kernel_initializer=init) for _ in range(4)] +
                              [Dense(3, activation="softmax")])
        m.compile("sgd", "sparse_categorical_crossentropy")
        flow = gradient_flow(m, x, y)
        assert "grad norm" in str(flow)
        return [s["norm"] for k, s in flow.items() if k.endswith("bias")][:5]

    tiny = bias_norms(fastnn.initializers.RandomNormal(stddev=0.01))
    assert all(a < 0.2 * b for a, b in zip(tiny, tiny[1:])) and tiny[0] < 1e-3 * tiny[-1]
    glorot = bias_norms("glorot_uniform")
    assert max(glorot) < 10 * min(glorot)
