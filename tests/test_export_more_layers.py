"""ONNX export of UnitNormalization, RMSNormalization, GroupNormalization, RepeatVector,
Permute and Dot: onnxruntime's output equals model.predict for every option, in Sequential
and functional models, float32 and float64, on batch 1 and odd widths."""
import numpy as np
import pytest

import fastnn
from fastnn import layers as L

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from fastnn.export import OPSET, SUPPORTED_LAYERS, export_onnx, to_onnx  # noqa: E402

NEW = ("UnitNormalization", "RMSNormalization", "GroupNormalization", "RepeatVector", "Permute", "Dot")
# (rtol, atol) with atol times max(1, the largest |output|): an entry that is a cancelling sum
# (Dot's products, GroupNormalization's x - mean) differs between the backends' summation orders
# by a few ulps of the terms' scale, not of its own (float32: 1e-6 is ~8 ulps of 1.0)
TOL = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-13)}


def _x(shape, seed=0, dtype="float32"):
    return (np.random.default_rng(seed).standard_normal(shape) * 2).astype(dtype)


def _randomize(model, seed=1):
    """Non-trivial scales, gammas and betas (not the ones / zeros they start at)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        for name, v in layer.vars.items():
            v[...] = rng.uniform(-1.5, 1.5, v.shape) if name != "kernel" else v
    return model


def _session(model, tmp_path, dtype=None):
    path = export_onnx(model, tmp_path / "m.onnx", dtype=dtype)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == OPSET == 17
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), proto


def _compare(model, feeds, tmp_path, dtype=None, tol=None):
    """Export, run every batch of ``feeds`` (a list of {input name: array}) and compare with
    model.predict; returns the ONNX op types."""
    sess, proto = _session(model, tmp_path, dtype)
    assert [o.name for o in sess.get_outputs()] == (model.output_names if model._graph_inputs else ["output"])
    out_dtype = np.dtype(dtype or model.dtype)
    rtol, atol = tol or TOL[out_dtype.name]
    for feed in feeds:
        want = model.predict(feed if model._graph_inputs else feed["input"])
        want = want if isinstance(want, list) else [want]
        got = sess.run(None, {k: v.astype(out_dtype) for k, v in feed.items()})
        for g_, w in zip(got, want):
            assert g_.shape == w.shape and g_.dtype == out_dtype
            np.testing.assert_allclose(g_, w, rtol=rtol, atol=atol * max(1.0, float(np.abs(w).max())))
    return [n.op_type for n in proto.graph.node]


def _seq_feeds(shape, dtype, special=None):
    """Batches 1 and 7 (and ``special`` rows, if any) for a Sequential's input."""
    feeds = [{"input": _x((1,) + shape, 3, dtype)}, {"input": _x((7,) + shape, 4, dtype)}]
    if special is not None:
        feeds.append({"input": special.astype(dtype)})
    return feeds


# ------------------------------------------------------------------------------ normalizations
def _tiny_rows(shape):
    """An all-zero sample, a sample of norm below 1e-12 (UnitNormalization's clamp) and an
    ordinary one."""
    rng = np.random.default_rng(9)
    return np.stack([np.zeros(shape), rng.standard_normal(shape) * 1e-14, rng.standard_normal(shape)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,axis", [((5,), -1), ((3, 5), -1), ((3, 5), 1), ((3, 5), -2), ((3, 5), [1, 2]),
                                        ((2, 3, 5), (1, -1)), ((2, 3, 5), [-2]), ((2, 3, 5), [1, 2, 3])])
def test_unit_normalization(shape, axis, dtype, tmp_path):
    m = fastnn.Sequential([L.Input(shape), L.UnitNormalization(axis=axis)], dtype=dtype)
    ops = _compare(m, _seq_feeds(shape, dtype, _tiny_rows(shape)), tmp_path)
    assert "ReduceSumSquare" in ops and "Min" in ops


def test_unit_normalization_clamps_the_inverse_norm_not_the_sum(tmp_path):
    """The norm below 1e-12: x * 1e12 (fastnn's min(1/||x||, 1/epsilon)), not x / sqrt(sum + eps)."""
    m = fastnn.Sequential([L.Input(2), L.UnitNormalization()], dtype="float64")
    x = np.array([[3e-14, 4e-14], [3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(m.predict(x), [[0.03, 0.04], [0.6, 0.8], [0.0, 0.0]], rtol=1e-12)
    sess, _ = _session(m, tmp_path)
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], m.predict(x), rtol=1e-12, atol=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,axis,eps", [((5,), -1, 1e-6), ((3, 5), -1, 0.5), ((3, 5), 1, 1e-6),
                                            ((3, 5), [-2, -1], 1e-3), ((2, 3, 5), (1, 3), 1e-6),
                                            ((2, 3, 5), -2, 2.0)])
def test_rms_normalization(shape, axis, eps, dtype, tmp_path):
    m = _randomize(fastnn.Sequential([L.Input(shape), L.RMSNormalization(axis=axis, epsilon=eps)], dtype=dtype))
    ops = _compare(m, _seq_feeds(shape, dtype, _tiny_rows(shape)), tmp_path)
    assert "ReduceMean" in ops and "Sqrt" in ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,groups,axis", [((6,), 2, -1), ((6,), 1, -1), ((6,), 6, -1), ((6,), -1, 1),
                                               ((4, 6), 3, -1), ((6, 5), 2, 1), ((6, 5), 6, -2),
                                               ((3, 6, 5), 3, 2), ((3, 5, 6), 2, -1), ((6, 3, 5), 1, 1)])
def test_group_normalization(shape, groups, axis, dtype, tmp_path):
    m = _randomize(fastnn.Sequential([L.Input(shape), L.GroupNormalization(groups, axis=axis)], dtype=dtype))
    _compare(m, _seq_feeds(shape, dtype, np.stack([np.zeros(shape), np.ones(shape)])), tmp_path)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("center,scale,eps", [(True, True, 1e-3), (False, True, 0.3), (True, False, 1e-5),
                                              (False, False, 1.0)])
def test_group_normalization_center_scale_epsilon(center, scale, eps, dtype, tmp_path):
    m = _randomize(fastnn.Sequential([L.Input((4, 6)), L.GroupNormalization(3, axis=-1, epsilon=eps, center=center,
                                                                            scale=scale)], dtype=dtype))
    assert ("gamma" in m.layers[-1].vars) == scale and ("beta" in m.layers[-1].vars) == center
    _compare(m, _seq_feeds((4, 6), dtype), tmp_path)


# ------------------------------------------------------------------------------ reshaping
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 3])
def test_repeat_vector(n, dtype, tmp_path):
    m = _randomize(fastnn.Sequential([L.Input(5), L.Dense(7), L.RepeatVector(n), L.RMSNormalization(axis=1),
                                      L.Flatten(), L.Dense(3)], dtype=dtype))
    assert m.layers[2].output_shape == (n, 7)
    ops = _compare(m, _seq_feeds((5,), dtype), tmp_path)
    assert "Tile" in ops


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape,dims", [((3, 5), (2, 1)), ((3, 5), (1, 2)), ((2, 3, 5), (3, 1, 2)),
                                        ((2, 3, 5), (2, 3, 1)), ((2, 3, 5), (1, 3, 2)), ((2, 3, 5), (1, 2, 3)),
                                        ((2, 3, 5), (3, 2, 1))])
def test_permute(shape, dims, dtype, tmp_path):
    m = fastnn.Sequential([L.Input(shape), L.Permute(dims), L.UnitNormalization(axis=-1)], dtype=dtype)
    ops = _compare(m, _seq_feeds(shape, dtype), tmp_path)
    assert "Transpose" in ops


# ------------------------------------------------------------------------------ Dot
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("sa,sb,axes", [((5,), (5,), 1), ((5,), (5,), -1), ((5,), (5,), (1, 1)),
                                        ((3, 5), (5,), (2, 1)), ((5,), (3, 5), (-1, 2)),
                                        ((3, 4), (3, 5), 1), ((3, 4), (5, 4), (-1, -1)), ((3, 4), (4, 5), (2, 1)),
                                        ((2, 3, 4), (3, 5), (2, 1))])
def test_dot(sa, sb, axes, normalize, dtype, tmp_path):
    a, b = L.Input(sa, name="a"), L.Input(sb, name="b")
    y = L.Dot(axes, normalize=normalize, name="dot")([a, b])
    m = fastnn.Model([a, b], y, dtype=dtype)
    feeds = [{"a": _x((1,) + sa, 1, dtype), "b": _x((1,) + sb, 2, dtype)},
             {"a": _x((7,) + sa, 3, dtype), "b": _x((7,) + sb, 4, dtype)}]
    if normalize:  # zero and below-1e-7 norms: the clamp at 1e7
        za, zb = _x((2,) + sa, 5, dtype), _x((2,) + sb, 6, dtype)
        za[0], zb[1] = 0.0, zb[1] * 1e-9
        feeds.append({"a": za, "b": zb})
    ops = _compare(m, feeds, tmp_path)
    assert "Einsum" in ops and ("ReduceSumSquare" in ops) == normalize


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dot_of_one_tensor_with_itself_and_a_shared_dot(dtype, tmp_path):
    x = L.Input(5, name="x")
    h = L.Reshape((3, 4))(L.Dense(12, activation="tanh")(x))
    dot = L.Dot(-1, normalize=True, name="cos")
    g = dot([h, h])                                              # (3, 3): the Gram matrix of the rows
    g2 = dot([L.Permute((1, 2))(h), h])                          # the same Dot object reused
    rv = L.RepeatVector(2)(L.Flatten()(g))                       # (2, 9)
    out = L.Dense(2, name="head")(L.Flatten()(L.GroupNormalization(3, axis=1)(L.Add()([g, g2]))))
    m = _randomize(fastnn.Model(x, [out, L.Permute((2, 1))(rv)], dtype=dtype))
    feeds = [{"x": _x((1, 5), 1, dtype)}, {"x": _x((5, 5), 2, dtype)}]
    ops = _compare(m, feeds, tmp_path)
    assert ops.count("Einsum") == 2 and ops.count("Tile") == 1


# ------------------------------------------------------------------------------ chains, dtypes
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_new_layer_in_one_functional_model(dtype, tmp_path):
    a, b = L.Input(5, name="a"), L.Input((3, 4), name="b")
    ha = L.RepeatVector(3)(L.Dense(4)(a))                                     # (3, 4)
    hb = L.Permute((2, 1))(L.GroupNormalization(2, axis=-1)(b))               # (4, 3)
    d = L.Dot((2, 1), name="d")([ha, hb])                                     # (3, 3)
    u = L.UnitNormalization(axis=[1, 2])(L.RMSNormalization(axis=-2, epsilon=1e-2)(d))
    c = L.Dot(1, normalize=True, name="cos")([L.Flatten()(u), L.Dense(9)(a)])  # (1,)
    m = _randomize(fastnn.Model([a, b], [u, L.Dense(2, name="out")(L.Concatenate()([c, L.Flatten()(d)]))],
                                dtype=dtype))
    feeds = [{"a": _x((1, 5), 1, dtype), "b": _x((1, 3, 4), 2, dtype)},
             {"a": _x((9, 5), 3, dtype), "b": _x((9, 3, 4), 4, dtype)}]
    _compare(m, feeds, tmp_path)


def test_float32_model_exported_as_float64(tmp_path):
    m = _randomize(fastnn.Sequential([L.Input((4, 6)), L.GroupNormalization(2), L.Permute((2, 1)),
                                      L.RMSNormalization(axis=[1, 2]), L.UnitNormalization(), L.Flatten(),
                                      L.Dense(5), L.RepeatVector(2)]))
    proto = to_onnx(m, dtype="float64")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    # the float64 graph against the float32 predict: float32's tolerance
    _compare(m, _seq_feeds((4, 6), "float32"), tmp_path, dtype="float64", tol=TOL["float32"])


def test_trained_model_with_the_new_layers(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3, 4)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(int)
    m = fastnn.Sequential([L.Input((3, 4)), L.GroupNormalization(2), L.RMSNormalization(), L.Permute((2, 1)),
                           L.Flatten(), L.Dense(8, activation="relu"), L.RepeatVector(2),
                           L.UnitNormalization(axis=[1, 2]), L.Flatten(), L.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    _compare(m, [{"input": x}, {"input": x[:1]}], tmp_path)


# ------------------------------------------------------------------------------ what is still refused
class _Custom(L.Layer):
    """A layer the exporter does not know."""

    def _build(self, input_shape):
        self.output_shape = input_shape

    def forward(self, x, training=False, logits=False):
        return x


class _CustomMerge(L.Merge):
    """A merge layer the exporter does not know."""

    def forward(self, xs, training=False, logits=False):
        return xs[0]


def test_the_new_layers_are_listed_and_other_layers_still_refused(tmp_path):
    assert set(NEW) <= set(SUPPORTED_LAYERS) and len(set(SUPPORTED_LAYERS)) == len(SUPPORTED_LAYERS)
    m = fastnn.Sequential([L.Input(4), L.UnitNormalization(), _Custom(name="custom_1")])
    with pytest.raises(ValueError, match=r"^export_onnx: layer 'custom_1' \(_Custom\) has no ONNX export; "
                                         r"supported layers: InputLayer, Dense, .*, Dot"):
        export_onnx(m, tmp_path / "c.onnx")
    assert not (tmp_path / "c.onnx").exists()
    x = L.Input(4, name="x")
    m = fastnn.Model(x, _CustomMerge(name="cm_1")([L.Dense(4)(x), x]))
    with pytest.raises(ValueError, match=r"^export_onnx: layer 'cm_1' \(_CustomMerge\) has no ONNX export; "
                                         r"supported layers: .*RepeatVector"):
        to_onnx(m)
