"""General graphs (issue 16): merge layers against float64 NumPy twins, whole-model gradient
checks on residual, two-input, two-output and shared-layer models, per-output losses and
metrics, lists and dicts of inputs and targets, save/load, clone, freezing, summary."""
import numpy as np
import pytest

import fastnn
from fastnn.gradcheck import check_gradients
from fastnn.layers import (Activation, Add, Average, BatchNormalization, Concatenate, Dense, Dropout, Input,
                           Maximum, Multiply, Subtract)

# ------------------------------------------------------------ NumPy twins of the merges
TWINS = {
    Add: (lambda a, b: a + b, lambda d, a, b: (d, d)),
    Subtract: (lambda a, b: a - b, lambda d, a, b: (d, -d)),
    Multiply: (lambda a, b: a * b, lambda d, a, b: (d * b, d * a)),
    Average: (lambda a, b: (a + b) / 2, lambda d, a, b: (d / 2, d / 2)),
    Maximum: (np.maximum, lambda d, a, b: (d * (a >= b), d * (a < b))),
    Concatenate: (lambda a, b: np.concatenate([a, b], axis=-1),
                  lambda d, a, b: (d[:, :a.shape[1]], d[:, a.shape[1]:])),
}


def _merge_model(cls, dtype):
    a, b = Input(4, name="a"), Input(4, name="b")
    ha, hb = Dense(4, name="da")(a), Dense(4, name="db")(b)
    out = Dense(3, name="out")(cls()([ha, hb]))
    return fastnn.Model([a, b], out, dtype=dtype)


def _twin_step(w, a, b, y, fwd, bwd, lr):
    """Forward and one SGD step of the merge model in float64 NumPy; (prediction, new weights)."""
    Wa, ba, Wb, bb, Wo, bo = w
    ha, hb = a @ Wa + ba, b @ Wb + bb
    m = fwd(ha, hb)
    p = m @ Wo + bo
    dp = 2 * (p - y) / p.size
    dm = dp @ Wo.T
    dha, dhb = bwd(dm, ha, hb)
    grads = [a.T @ dha, dha.sum(0), b.T @ dhb, dhb.sum(0), m.T @ dp, dp.sum(0)]
    return p, [wi - lr * g for wi, g in zip(w, grads)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cls", list(TWINS))
def test_merge_forward_and_training_step_match_numpy_twin(cls, dtype):
    rng = np.random.default_rng(1)
    model = _merge_model(cls, dtype)
    model.compile(fastnn.optimizers.SGD(learning_rate=0.1), "mse")
    a, b, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)), rng.normal(size=(6, 3))
    w0 = [wi.astype(np.float64) for wi in model.get_weights()]
    p_twin, w_twin = _twin_step(w0, a, b, y, *TWINS[cls], 0.1)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.predict([a, b]), p_twin, **tol)
    model.fit({"a": a, "b": b}, y, batch_size=6, epochs=1, shuffle=False, verbose=0)
    for got, want in zip(model.get_weights(), w_twin):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("cls, fn", [(Add, lambda xs: xs[0] + xs[1] + xs[2]),
                                     (Multiply, lambda xs: xs[0] * xs[1] * xs[2]),
                                     (Average, lambda xs: (xs[0] + xs[1] + xs[2]) / 3),
                                     (Maximum, lambda xs: np.maximum(np.maximum(xs[0], xs[1]), xs[2])),
                                     (Concatenate, lambda xs: np.concatenate(xs, axis=1))])
def test_three_input_merges_forward_and_gradcheck(cls, fn):
    rng = np.random.default_rng(2)
    ins = [Input(3, name=f"i{k}") for k in range(3)]
    merged = cls()([Dense(3, activation="tanh")(t) for t in ins])
    model = fastnn.Model(ins, Dense(2)(merged), dtype="float64")
    xs = [rng.normal(size=(5, 3)) for _ in range(3)]
    hidden = [np.tanh(x @ l.get_weights()[0] + l.get_weights()[1]) for x, l in zip(xs, model.layers[:3])]
    k, bias = model.layers[-1].get_weights()
    np.testing.assert_allclose(model.predict(xs), fn(hidden) @ k + bias, rtol=1e-12)
    model.compile("sgd", "mse")
    report = check_gradients(model, xs, rng.normal(size=(5, 2)))
    assert max(c.rel_error for c in report) < 1e-7, str(report)


def test_merge_shape_errors_name_the_layer_and_shapes():
    a, b, c = Input(3), Input(4), Input((2, 3))
    with pytest.raises(ValueError, match=r"Add needs inputs of one shape, got \(None, 3\), \(None, 4\)"):
        Add()([a, b])
    with pytest.raises(ValueError, match="exactly 2 inputs, got 3"):
        Subtract()([a, a, a])
    with pytest.raises(ValueError, match="at least 2 inputs, got 1"):
        Add()([a])
    with pytest.raises(TypeError, match="called on a list of tensors"):
        Add()(a)
    with pytest.raises(ValueError, match="axis: expected a feature axis"):
        Concatenate(axis=0)([a, b])
    with pytest.raises(ValueError, match="of one rank"):
        Concatenate()([a, c])
    with pytest.raises(ValueError, match="agree except on that axis"):
        Concatenate(axis=1)([Input((2, 3)), Input((2, 4))])
    assert Concatenate(axis=1)([Input((2, 3)), Input((5, 3))]).shape == (7, 3)


# ------------------------------------------------------------ whole-model gradient checks
def _residual(width=5, blocks=2, dtype="float32"):
    x = Input(width)
    h = x
    for _ in range(blocks):
        r = Dense(width, activation="tanh")(h)
        r = Dense(width)(r)
        h = Activation("tanh")(Add()([h, r]))
    return fastnn.Model(x, Dense(3, activation="softmax")(h), dtype=dtype)


def _two_input_two_output():
    a, b = Input(3, name="a"), Input(4, name="b")
    ha = Dense(4, activation="tanh", name="ha")(a)
    hb = Dense(4, activation="sigmoid", name="hb")(b)
    h = Concatenate(name="cat")([ha, hb])
    cls = Dense(3, activation="softmax", name="cls")(h)
    reg = Dense(2, name="reg")(Multiply()([ha, Dense(4, activation="tanh")(hb)]))
    return fastnn.Model([a, b], [cls, reg])


def _report_ok(report):
    assert max(c.rel_error for c in report) < 1e-7, str(report)


def test_gradcheck_residual_model():
    rng = np.random.default_rng(0)
    m = _residual()
    m.compile("sgd", "sparse_categorical_crossentropy", regularizer="l2")
    _report_ok(check_gradients(m, rng.normal(size=(6, 5)), rng.integers(0, 3, 6)))


def test_gradcheck_two_input_two_output_model_with_loss_weights():
    rng = np.random.default_rng(0)
    m = _two_input_two_output()
    m.compile("adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
              loss_weights={"cls": 0.7, "reg": 2.0})
    x = {"a": rng.normal(size=(6, 3)), "b": rng.normal(size=(6, 4))}
    report = check_gradients(m, x, {"cls": rng.integers(0, 3, 6), "reg": rng.normal(size=(6, 2))})
    assert len(report) == 2 * 5  # ha, hb, the dense on hb, cls, reg
    _report_ok(report)


def test_gradcheck_shared_layer_bn_and_dropout_in_a_graph():
    rng = np.random.default_rng(0)
    a, b = Input(4), Input(4)
    shared = Dense(4, activation="tanh", name="shared")
    h = Add()([shared(a), shared(Dropout(0.5)(b))])
    h = BatchNormalization()(h)
    m = fastnn.Model([a, b], Dense(1, activation="sigmoid")(shared(h)))
    m.compile("sgd", "binary_crossentropy")
    _report_ok(check_gradients(m, [rng.normal(size=(6, 4)), rng.normal(size=(6, 4))], rng.integers(0, 2, 6)))


def test_gradcheck_a_value_merged_with_itself_and_fanned_out():
    rng = np.random.default_rng(1)
    x = Input(4)
    h = Dense(4, activation="tanh")(x)
    twice = Add()([h, h])                                   # one value, both inputs of a merge
    diff = Subtract()([Dense(4, activation="tanh")(twice), h])  # h read by three nodes
    both = Add()([Dense(4, activation="tanh")(x), Dense(4, activation="sigmoid")(x)])  # each writes into its dy
    out = Dense(2)(Concatenate()([Multiply()([diff, twice]), Maximum()([h, diff]), both]))
    m = fastnn.Model(x, out, dtype="float64")
    m.compile("sgd", "mse")
    _report_ok(check_gradients(m, rng.normal(size=(5, 4)), rng.normal(size=(5, 2))))


# ------------------------------------------------------------ shared layers
def test_shared_layer_has_one_slot_and_summed_gradient():
    rng = np.random.default_rng(3)
    x = Input(3)
    shared = Dense(3, activation="tanh")
    out = Dense(1)(shared(shared(x)))  # one layer, two calls in a row (a chain, not the fast path)
    m = fastnn.Model(x, out, dtype="float64")
    assert m._chain is None and len(m.layers) == 2 and m.arena.size == 12 + 4
    m.compile("sgd", "mse")
    xv, yv = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    _, g = m.compute_loss_and_gradients(xv, yv)
    # the same function with two separate layers holding the same weights: gradients add up
    x2 = Input(3)
    d1, d2 = Dense(3, activation="tanh"), Dense(3, activation="tanh")
    m2 = fastnn.Model(x2, Dense(1)(d2(d1(x2))), dtype="float64")
    m2.set_weights(m.get_weights()[:2] * 2 + m.get_weights()[2:])
    m2.compile("sgd", "mse")
    _, g2 = m2.compute_loss_and_gradients(xv, yv)
    np.testing.assert_allclose(g[:12], g2[:12] + g2[12:24], rtol=1e-12)
    np.testing.assert_allclose(g[12:], g2[24:], rtol=1e-12)
    np.testing.assert_allclose(m.predict(xv), m2.predict(xv), rtol=1e-12)
    outs = m.layer_outputs(xv)
    assert list(outs) == [shared.name, f"{shared.name}[1]", m.layers[1].name]


def test_shared_dropout_draws_a_fresh_mask_per_call():
    x = Input(64)
    drop = Dropout(0.5, seed=1)
    m = fastnn.Model(x, Subtract()([drop(x), drop(x)]))
    m.compile("sgd", "mse")
    y = m._forward(np.ones((4, 64), dtype=np.float32), True, False)
    assert np.any(y != 0) and drop._calls == 2


# ------------------------------------------------------------ multi-output training
def _data(rng, n=16):
    return ({"a": rng.normal(size=(n, 3)), "b": rng.normal(size=(n, 4))},
            {"cls": rng.integers(0, 3, n), "reg": rng.normal(size=(n, 2))})


def test_multi_output_logs_follow_keras_names_and_weighted_total():
    rng = np.random.default_rng(4)
    m = _two_input_two_output()
    m.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
              metrics={"cls": ["accuracy"], "reg": ["mae"]})
    x, y = _data(rng)
    logs = m.evaluate(x, y, return_dict=True)
    assert list(logs) == ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"]
    p_cls, p_reg = m.predict([x["a"], x["b"]])
    ce = -np.mean(np.log(p_cls[np.arange(16), y["cls"]]))
    mse = np.mean((p_reg - y["reg"]) ** 2)
    assert logs["cls_loss"] == pytest.approx(ce, rel=1e-5)
    assert logs["reg_loss"] == pytest.approx(mse, rel=1e-5)
    assert logs["loss"] == pytest.approx(ce + 0.5 * mse, rel=1e-5)
    assert logs["cls_accuracy"] == pytest.approx(np.mean(p_cls.argmax(1) == y["cls"]))
    assert logs["reg_mae"] == pytest.approx(np.mean(np.abs(p_reg - y["reg"])), rel=1e-5)
    assert m.evaluate(x, [y["cls"], y["reg"]]) == pytest.approx(list(logs.values()))
    h = m.fit(x, y, epochs=2, batch_size=4, validation_split=0.25, verbose=0, seed=0)
    assert set(h.history) == set(logs) | {"val_" + k for k in logs}


def test_one_loss_and_flat_metrics_apply_to_every_output():
    rng = np.random.default_rng(5)
    a = Input(3)
    h = Dense(4, activation="relu")(a)
    m = fastnn.Model(a, [Dense(2, name="o1")(h), Dense(2, name="o2")(h)])
    m.compile("sgd", "mse", metrics=["mae"])
    x, y1, y2 = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    logs = m.evaluate(x, [y1, y2], return_dict=True)
    assert list(logs) == ["loss", "o1_loss", "o2_loss", "o1_mae", "o2_mae"]
    assert logs["loss"] == pytest.approx(logs["o1_loss"] + logs["o2_loss"])


def test_bad_inputs_and_targets_are_refused_and_leave_the_model_unchanged():
    rng = np.random.default_rng(6)
    m = _two_input_two_output()
    m.compile("sgd", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"})
    x, y = _data(rng)
    before = [w.copy() for w in m.get_weights()]
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        m.fit({"a": x["a"]}, y, verbose=0)
    with pytest.raises(ValueError, match=r"expected a list of 2 arrays"):
        m.fit(x["a"], y, verbose=0)
    with pytest.raises(ValueError, match=r"x\['b'\]: expected shape \(n, 4\)"):
        m.fit({"a": x["a"], "b": x["a"]}, y, verbose=0)
    with pytest.raises(ValueError, match="different lengths"):
        m.fit({"a": x["a"], "b": x["b"][:5]}, y, verbose=0)
    with pytest.raises(ValueError, match=r"y\['cls'\]: labels out of range"):
        m.fit(x, {"cls": y["cls"] + 3, "reg": y["reg"]}, verbose=0)
    with pytest.raises(ValueError, match=r"unknown output names \['nope'\]"):
        m.compile("sgd", loss={"nope": "mse"})
    with pytest.raises(ValueError, match="loss_weights"):
        m.compile("sgd", "mse", loss_weights=[1.0, -1.0])
    for w0, w1 in zip(before, m.get_weights()):
        np.testing.assert_array_equal(w0, w1)


def test_model_construction_errors():
    a, b = Input(3), Input(3)
    with pytest.raises(ValueError, match="not in inputs"):
        fastnn.Model(a, Add()([a, b]))
    with pytest.raises(ValueError, match="Input"):
        fastnn.Model(Dense(2)(a), Dense(2)(a))
    with pytest.raises(ValueError, match="computed by a layer"):
        fastnn.Model(a, a)
    c, d = Input(3, name="same"), Input(3, name="same")
    with pytest.raises(ValueError, match="names must differ"):
        fastnn.Model([c, d], Add()([c, d]))


# ------------------------------------------------------------ persistence, clone, freezing, summary
def test_save_load_round_trip_of_a_graph_continues_training_identically(tmp_path):
    rng = np.random.default_rng(7)
    m = _two_input_two_output()
    m.compile("adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
              loss_weights={"cls": 1.0, "reg": 0.25}, metrics={"cls": ["accuracy"]})
    x, y = _data(rng)
    m.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=0)
    path = tmp_path / "graph.npz"
    m.save(path)
    m2 = fastnn.load_model(path)
    assert m2.get_config() == m.get_config() and m2.output_names == ["cls", "reg"]
    for p, q in zip(m.predict(x), m2.predict(x)):
        np.testing.assert_array_equal(p, q)
    h1 = m.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=1)
    h2 = m2.fit(x, y, epochs=1, batch_size=4, verbose=0, seed=1)
    assert h1.history == h2.history
    for w1, w2 in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(w1, w2)


def test_config_round_trip_and_clone_of_shared_residual_graph():
    x = Input(4)
    shared = Dense(4, activation="relu")
    h = Add()([x, shared(x)])
    m = fastnn.Model(x, Dense(2)(shared(h)))
    cfg = m.get_config()
    assert cfg["graph"]["nodes"] == [[0, [0]], [1, [0, 1]], [0, [2]], [2, [3]]]
    m2 = fastnn.Model.from_config(cfg)
    assert m2.get_config() == cfg
    c = fastnn.clone_model(m)
    assert c.get_config()["graph"] == cfg["graph"] and c.count_params() == m.count_params()
    assert not np.array_equal(c.get_weights()[0], m.get_weights()[0])
    xv = np.ones((2, 4), np.float32)
    m2.set_weights(m.get_weights())
    np.testing.assert_array_equal(m2.predict(xv), m.predict(xv))


def test_freezing_a_branch_of_a_graph():
    rng = np.random.default_rng(8)
    m = _two_input_two_output()
    m.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"])
    frozen = m.get_layer("ha")
    frozen.trainable = False
    before = [w.copy() for w in frozen.get_weights()]
    other = m.get_layer("hb").get_weights()[0].copy()
    x, y = _data(rng)
    m.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for w0, w1 in zip(before, frozen.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert not np.array_equal(other, m.get_layer("hb").get_weights()[0])


def test_summary_prints_connections_and_chain_keeps_its_table():
    lines = []
    _two_input_two_output().summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" in text and "a (InputLayer)" in text
    cat = next(i for i, l in enumerate(lines) if l.startswith("cat (Concatenate)"))
    assert lines[cat].endswith("ha[0][0]") and lines[cat + 1].strip() == "hb[0][0]"
    chain = []
    fastnn.Sequential([Input(3), Dense(2)]).summary(print_fn=chain.append)
    assert "Connected to" not in "\n".join(chain)


def test_chain_models_keep_the_fast_path_and_graphs_export_to_onnx():
    x = Input(3)
    assert fastnn.Model(x, Dense(2)(Dense(4)(x)))._chain is not None
    assert fastnn.Sequential([Input(3), Dense(2)])._chain is not None
    pytest.importorskip("onnx")
    from fastnn.export import to_onnx
    proto = to_onnx(_residual())  # parity with predict: tests/test_export.py
    assert [n.op_type for n in proto.graph.node].count("Add") == 2


def test_dicts_on_a_one_input_model_and_validation_data_as_lists():
    rng = np.random.default_rng(9)
    x = Input(3, name="features")
    m = fastnn.Model(x, Dense(2, activation="softmax", name="probs")(x))
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    xv, yv = rng.normal(size=(8, 3)), rng.integers(0, 2, 8)
    assert m.evaluate({"features": xv}, {"probs": yv}) == m.evaluate(xv, yv)
    np.testing.assert_array_equal(m.predict({"features": xv}), m.predict(xv))
    g = _two_input_two_output()
    g.compile("sgd", loss=["sparse_categorical_crossentropy", "mse"])
    xs, ys = _data(rng)
    h = g.fit(xs, ys, epochs=1, verbose=0,
              validation_data=([xs["a"][:4], xs["b"][:4]], [ys["cls"][:4], ys["reg"][:4]]))
    assert "val_cls_loss" in h.history


@pytest.mark.parametrize("module, forbidden", [
    ("dag.py", {"graph", "trainer", "io", "models", "multi_io", "gradcheck"}),
    ("multi_io.py", {"graph", "io", "models", "dag", "gradcheck"}),
    ("layers/merging.py", {"graph", "trainer", "arena", "models", "dag"}),
])
def test_graph_modules_never_import_upward(module, forbidden):
    import ast
    import pathlib
    src = (pathlib.Path(fastnn.__file__).resolve().parent / module).read_text()
    names = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = (node.module or "").split(".")[0]
            names.add(base) if base else names.update(a.name for a in node.names)
    assert not (names & forbidden)
    assert len(src.splitlines()) <= 500


@pytest.mark.parametrize("tamper", [
    lambda g: g["nodes"].__setitem__(1, [1, [7]]),        # a value that does not exist
    lambda g: g["nodes"].__setitem__(0, [2, [0]]),        # a layer before its turn
    lambda g: g["outputs"].__setitem__(0, 0),             # an output that is an input
])
def test_load_refuses_a_tampered_graph_config(tmp_path, tamper):
    import json
    x = Input(3)
    m = fastnn.Model(x, Dense(2)(Add()([x, Dense(3)(x)])))
    path = tmp_path / "m.npz"
    m.save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    cfg = json.loads(str(arrays["__config__"]))
    tamper(cfg["config"]["graph"])
    arrays["__config__"] = np.array(json.dumps(cfg))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=str(path)):
        fastnn.load_model(path)


def test_compile_checks_each_outputs_loss_against_its_own_layer():
    m = _two_input_two_output()
    with pytest.raises(ValueError, match="'reg'"):
        m.compile("sgd", loss={"cls": "sparse_categorical_crossentropy", "reg": "sparse_categorical_crossentropy"})
    assert not m.compiled
    a, b = Input(2), Input(3)
    ok = fastnn.Model([a, b], Dense(3, activation="softmax")(Concatenate()([a, b])))
    ok.compile("sgd", "sparse_categorical_crossentropy")  # the output node, not the last input, is judged
    bad = fastnn.Model([a, b], Dense(3)(Concatenate()([a, b])))
    with pytest.raises(ValueError, match="output layer"):
        bad.compile("sgd", "sparse_categorical_crossentropy")
