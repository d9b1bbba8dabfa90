"""ONNX export: onnxruntime's output equals model.predict on every supported layer."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L
from fastnn.activations import KNOWN

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from fastnn.export import OPSET, export_onnx, to_onnx  # noqa: E402


def _run(model, x, tmp_path, dtype=None):
    path = export_onnx(model, tmp_path / "m.onnx", dtype=dtype)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == OPSET >= 17
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["output"], {"input": x})[0], proto


def _check(model, x, tmp_path, rtol=1e-5):
    want = model.predict(x)
    got, proto = _run(model, x.astype(want.dtype), tmp_path)
    assert got.shape == want.shape and got.dtype == want.dtype
    # 1e-5 relative, with an absolute floor at 1e-5 of the output's scale for entries near 0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    return proto


def _x(shape, seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * 2).astype(dtype)


def _randomize(model, seed=1):
    """Non-trivial parameters everywhere (biases, PReLU alphas, BN statistics)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for name, v in layer.vars.items():
            if name == "moving_variance":
                v[...] = rng.uniform(0.3, 2.0, v.shape)
            elif name != "kernel":
                v[...] = rng.uniform(-0.7, 0.7, v.shape)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", [a for a in KNOWN])
def test_every_activation_as_dense_and_as_layer(act, dtype, tmp_path):
    m = fastnn.Sequential([L.Dense(7, activation=act, input_dim=5), L.Dense(4), L.Activation(act)], dtype=dtype)
    if act == "gelu" and dtype == "float64":  # onnxruntime's Erf is float-only: refused, not cast
        with pytest.raises(ValueError, match="'gelu' \\(exact\\), which has no float64 ONNX export"):
            export_onnx(m, tmp_path / "m.onnx")
        return
    _check(_randomize(m), _x((33, 5), dtype=dtype), tmp_path, rtol=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("act", [fastnn.activations.LeakyReLU(0.05), fastnn.activations.ELU(0.4)])
def test_activation_alphas(act, tmp_path):
    m = fastnn.Sequential([L.Dense(6, activation=act, input_dim=3)])
    _check(_randomize(m), _x((20, 3)), tmp_path)


def test_batchnorm_folded_dropout_removed_flatten_prelu_maxout(tmp_path):
    m = fastnn.Sequential([L.Flatten(input_shape=(4, 3)), L.Dense(16), L.BatchNormalization(),
                           L.Dropout(0.5), L.Dense(12, activation="relu"),
                           L.BatchNormalization(center=False, epsilon=0.01), L.PReLU(),
                           L.Maxout(5, pieces=3), L.BatchNormalization(scale=False),
                           L.Dense(3, activation="softmax")])
    proto = _check(_randomize(m), _x((50, 4, 3)), tmp_path)
    ops = [n.op_type for n in proto.graph.node]
    assert "Dropout" not in ops and "BatchNormalization" not in ops
    assert ops.count("Gemm") == 4 and ops.count("Mul") == 2  # the first BN folded into its Gemm
    assert {"Flatten", "PRelu", "ReduceMax", "Softmax"} <= set(ops)


def test_trained_model_float64_and_float32_export(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    m = fastnn.Sequential([L.Dense(16, activation="selu", input_dim=6), L.BatchNormalization(),
                           L.Dense(2, activation="softmax")], dtype="float64")
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=3, batch_size=32, verbose=0, seed=0)
    _check(m, x, tmp_path, rtol=1e-12)
    got, _ = _run(m, x.astype(np.float32), tmp_path, dtype="float32")
    np.testing.assert_allclose(got, m.predict(x), rtol=1e-5, atol=1e-6)


class _NoExport(L.Layer):
    """An identity layer the ONNX exporter does not know."""

    def _build(self, input_shape):
        self.output_shape = input_shape

    def forward(self, x, training=False, logits=False):
        return x


def test_unsupported_layer_and_bad_calls_are_refused(tmp_path):
    m = fastnn.Sequential([L.Dense(3, input_dim=2), _NoExport(name="weird_1")])
    with pytest.raises(ValueError, match=r"layer 'weird_1' \(_NoExport\) has no ONNX export"):
        export_onnx(m, tmp_path / "w.onnx")
    assert not (tmp_path / "w.onnx").exists()
    unbuilt = fastnn.Sequential([L.Dense(3)])
    with pytest.raises(ValueError, match="not built"):
        to_onnx(unbuilt)
    with pytest.raises(ValueError, match="dtype"):
        to_onnx(fastnn.Sequential([L.Dense(3, input_dim=2)]), dtype="float16")
    with pytest.raises(TypeError, match="path"):
        export_onnx(fastnn.Sequential([L.Dense(3, input_dim=2)]), 5)


# ------------------------------------------------------------ graphs and the newer layers
def _run_graph(model, xs, tmp_path, dtype=None):
    """onnxruntime's outputs for the inputs ``xs`` (a dict keyed by input name)."""
    path = export_onnx(model, tmp_path / "g.onnx", dtype=dtype)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(xs)
    assert [o.name for o in sess.get_outputs()] == model.output_names
    return sess.run(None, xs), onnx.load(str(path))


def _close(got, want, rtol):
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_residual_model(dtype, tmp_path):
    x = L.Input(6, name="x")
    h = L.Dense(6, activation="relu")(x)
    for _ in range(2):
        r = L.BatchNormalization()(L.Dense(6)(h))  # folded into the Gemm
        h = L.Activation("tanh")(L.Add()([h, r]))
    m = _randomize(fastnn.Model(x, L.Dense(3, activation="softmax", name="probs")(h), dtype=dtype))
    xin = _x((40, 6), dtype=dtype)
    (got,), proto = _run_graph(m, {"x": xin}, tmp_path)
    _close(got, m.predict(xin), 1e-5 if dtype == "float32" else 1e-12)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Add") == 2 and ops.count("Gemm") == 4 and "BatchNormalization" not in ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_inputs_two_outputs_concatenate_and_a_shared_layer(dtype, tmp_path):
    a, b = L.Input(4, name="a"), L.Input(4, name="b")
    shared = L.Dense(5, activation="tanh", name="shared")
    ha, hb = shared(a), shared(b)  # one layer, two uses
    cat = L.Concatenate(name="cat")([ha, hb])
    cls = L.Dense(3, activation="softmax", name="cls")(cat)
    merged = [L.Subtract()([ha, hb]), L.Multiply()([ha, hb, ha]), L.Average()([ha, hb]),
              L.Maximum()([ha, hb, L.Dense(5)(b)])]
    reg = L.Dense(2, name="reg")(L.Concatenate(axis=1)(merged))
    m = _randomize(fastnn.Model([a, b], [cls, reg], dtype=dtype))
    xs = {"a": _x((30, 4), 1, dtype), "b": _x((30, 4), 2, dtype)}
    got, proto = _run_graph(m, xs, tmp_path)
    want = m.predict(xs)
    for g_, w in zip(got, want):
        _close(g_, w, 1e-5 if dtype == "float32" else 1e-12)
    gemms = [n for n in proto.graph.node if n.op_type == "Gemm"]
    assert len(gemms) == 5 and gemms[0].input[1:] == gemms[1].input[1:]  # the shared layer's initializers
    assert len(proto.graph.initializer) == len({i.name for i in proto.graph.initializer})
    ops = {n.op_type for n in proto.graph.node}
    assert {"Concat", "Sub", "Mul", "Max"} <= ops and ("Mean" in ops) == (dtype == "float32")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_newer_layer_in_a_chain(dtype, tmp_path):
    m = fastnn.Sequential([L.Input((3, 4)), L.LayerNormalization(), L.Reshape((12,)), L.Identity(),
                           L.Dense(12), L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2),
                           L.Reshape((4, 3)), L.LayerNormalization(axis=1, center=False),
                           L.LayerNormalization(axis=[1, 2], scale=False), L.Softmax(axis=1),
                           L.Flatten(), L.Dense(8), L.LeakyReLU(0.2), L.Dense(8), L.ELU(0.7), L.Dense(6),
                           L.ReLU(), L.Dense(6), L.ReLU(max_value=0.8), L.Reshape((2, 3)),
                           L.Softmax(axis=[1, 2]), L.Flatten(), L.Dense(4), L.Softmax()], dtype=dtype)
    rtol = 1e-5 if dtype == "float32" else 1e-12
    proto = _check(_randomize(m), _x((37, 3, 4), dtype=dtype), tmp_path, rtol=rtol)
    ops = [n.op_type for n in proto.graph.node]
    if dtype == "float32":
        assert ops.count("LayerNormalization") == 2 and ops.count("ReduceMean") == 2  # axis=1 of (4, 3): decomposed
    else:  # the op's epsilon attribute is a float32: every LayerNormalization decomposed in double
        assert ops.count("LayerNormalization") == 0 and ops.count("ReduceMean") == 6
    assert ops.count("Reshape") == 3 and ops.count("Softmax") == 2
    assert ops.count("Where") == 3 and ops.count("Min") >= 2


def test_unsupported_layer_in_a_graph_is_named(tmp_path):
    x = L.Input(3, name="x")
    h = L.Dense(3)(x)
    m = fastnn.Model(x, L.Add()([h, _NoExport(name="odd_1")(x)]))
    with pytest.raises(ValueError, match=r"layer 'odd_1' \(_NoExport\) has no ONNX export; supported layers: .*Concat"):
        export_onnx(m, tmp_path / "o.onnx")
    assert not (tmp_path / "o.onnx").exists()
