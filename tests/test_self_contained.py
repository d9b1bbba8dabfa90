"""Self-contained models (issue 17): Rescaling / Normalization layers saved with the model,
`fastnn train` then `fastnn predict` on raw images, foreign save names refused, ONNX export
of the preprocessing layers and model.export."""
import gzip
import re

import numpy as np
import pytest

import fastnn
import fastnn.data
from fastnn.cli import main
from fastnn.layers import Dense, Flatten, Input, Normalization, Rescaling


def _pixels(n=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 5)).astype(np.uint8)


def test_rescaling_and_normalization_equal_their_numpy_twins():
    x = _pixels()
    for dtype in ("float32", "float64"):
        xf = x.astype(dtype)
        m = fastnn.Sequential([Input((4, 5)), Rescaling(1 / 127.5, offset=-1)], dtype=dtype)
        np.testing.assert_allclose(m.predict(x), xf * (1 / 127.5) - 1, rtol=1e-6)
        for axis, red in ((-1, (0, 1)), (None, (0, 1, 2)), ((1, 2), (0,)), (1, (0, 2))):
            n = Normalization(axis=axis)
            n.adapt(xf)
            mean, var = xf.astype(np.float64).mean(red, keepdims=True), xf.astype(np.float64).var(red, keepdims=True)
            assert n.mean.shape == np.squeeze(mean, axis=0).squeeze().shape or n.mean.size == mean.size
            m = fastnn.Sequential([Input((4, 5)), n], dtype=dtype)
            np.testing.assert_allclose(m.predict(x), (xf - mean) / np.sqrt(var), rtol=1e-5, atol=1e-5)
    n = Normalization(mean=[1.0, 2.0], variance=[4.0, 0.0])
    m = fastnn.Sequential([Input(2), n])
    np.testing.assert_allclose(m.predict(np.array([[3.0, 2.0]])), [[1.0, 0.0]])  # std floored at 1e-7
    inv = fastnn.Sequential([Input(2), Normalization(mean=[1.0, 2.0], variance=[4.0, 1.0], invert=True)])
    np.testing.assert_allclose(inv.predict(np.array([[1.0, 0.0]])), [[3.0, 2.0]])


def test_preprocessing_layers_pass_gradients_float64():
    fastnn.utils.set_random_seed(0)  # the Dense weights (else the global generator: order-dependent)
    r = np.random.default_rng(1)
    x = r.normal(size=(6, 3))
    y = r.normal(size=(6, 2))
    n = Normalization()
    n.adapt(r.normal(3.0, 2.0, size=(50, 3)))
    m = fastnn.Sequential([Input(3), Rescaling(0.5, offset=0.25), n, Dense(2, activation="tanh")], dtype="float64")
    m.compile("sgd", "mse")
    loss, g = m.compute_loss_and_gradients(x, y)
    assert g.size == 3 * 2 + 2  # the preprocessing layers hold no trainable parameter
    # dx through both layers against central differences
    layers = m.layers
    out = m._forward(x, True, False)
    dy = 2 * (out - y) / out.size
    d = dy
    for layer in reversed(layers):
        d = layer.backward(d.copy(), True)
    num = np.zeros_like(x)
    eps = 1e-6
    for i in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = (m._loss_value(xp, y) - m._loss_value(xm, y)) / (2 * eps)
    assert np.max(np.abs(num - d)) / max(1e-12, np.max(np.abs(num))) < 1e-7


def test_adapt_from_any_fastnn_data_source_matches_the_array():
    x = np.random.default_rng(2).normal(5.0, 3.0, size=(300, 4))
    want = Normalization()
    want.adapt(x)
    batches = [(x[s:s + 64], np.zeros(len(x[s:s + 64]))) for s in range(0, 300, 64)]

    class DS(fastnn.data.Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return x[60 * i:60 * (i + 1)]
    pd = pytest.importorskip("pandas")
    for src in (batches, (b[0] for b in batches), DS(), fastnn.data.adapt(x, batch_size=7, shuffle=False),
                pd.DataFrame(x), x.tolist()):
        n = Normalization()
        n.adapt(src)
        np.testing.assert_allclose(n.mean, want.mean, rtol=1e-6)
        np.testing.assert_allclose(n.variance, want.variance, rtol=1e-6)
    with pytest.raises(ValueError, match="data: contains NaN"):
        Normalization().adapt(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match="mean, variance: give both"):
        Normalization(mean=1.0)


def test_preprocessing_is_saved_with_the_model(tmp_path):
    x = _pixels(200)
    y = (x.reshape(200, -1).mean(1) > 127).astype(int)
    n = Normalization(axis=None)
    n.adapt(x.reshape(200, -1) / 255)
    m = fastnn.Sequential([Input((4, 5)), Flatten(), Rescaling(1 / 255), n, Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    m.fit(x, y, epochs=2, verbose=0, seed=0)
    m.save(tmp_path / "m.npz")
    back = fastnn.load_model(tmp_path / "m.npz")
    assert np.array_equal(back.predict(x), m.predict(x))
    assert back.layers[2].mean.item() == pytest.approx(n.mean.item())
    j = fastnn.models.model_from_json(m.to_json())
    assert [type(l).__name__ for l in j.layers] == ["Flatten", "Rescaling", "Normalization", "Dense"]
    assert j.layers[1].scale == pytest.approx(1 / 255)


@pytest.mark.parametrize("name", ["m.h5", "m.keras", "m.hdf5", "M.KERAS", "m.onnx"])
def test_save_refuses_another_formats_name(tmp_path, name):
    m = fastnn.Sequential([Dense(2, input_dim=3)])
    with pytest.raises(ValueError, match=r"fastnn saves its own \.npz format.*ending in \.npz"):
        m.save(tmp_path / name)
    with pytest.raises(ValueError, match="ending in .npz"):
        m.save_weights(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_onnx_export_of_preprocessing_and_model_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    x = _pixels(50).astype(np.float32)
    for dtype in ("float32", "float64"):
        n = Normalization(axis=-1)
        n.adapt(x / 255)
        m = fastnn.Sequential([Input((4, 5)), Rescaling(1 / 255, offset=0.1), n, Flatten(),
                               Dense(3, activation="softmax"),
                               ], dtype=dtype)
        m2 = fastnn.Sequential([Input(20), Normalization(mean=np.arange(20.0), variance=np.arange(20.0) + 1,
                                                         invert=True)], dtype=dtype)
        for model, xin in ((m, x), (m2, x.reshape(50, -1))):
            path = tmp_path / f"m_{dtype}.onnx"
            model.export(str(path), format="onnx")
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            got = sess.run(None, {"input": xin.astype(dtype)})[0]
            np.testing.assert_allclose(got, model.predict(xin), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="format: expected one of 'onnx'"):
        m.export(str(tmp_path / "x.tflite"), format="tflite")


def _idx_gz(path, arr):
    dims = arr.ndim
    header = bytes([0, 0, 0x08, dims]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_train_then_predict_reproduces_the_printed_accuracy(tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert main(["train", "--epochs", "1", "--hidden", "16", "--dropout", "0", "--quiet", "--output", str(model),
                 "--seed", "2"]) == 0
    acc = float(re.search(r"test accuracy: ([0-9.]+)", capsys.readouterr().out).group(1))
    _, (xt, yt) = fastnn.datasets.load_default()
    _idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", xt)  # raw uint8 images, as Fashion-MNIST ships
    assert main(["predict", str(model), str(tmp_path / "t10k-images-idx3-ubyte.gz")]) == 0
    out = tmp_path / "t10k-images-idx3-ubyte.predictions.npz"
    assert str(out) in capsys.readouterr().out
    with np.load(out) as z:
        assert z["predictions"].shape == (2000, 10)
        assert float((z["classes"] == yt).mean()) == pytest.approx(acc, abs=1e-4)
        want = z["predictions"]
    # the other input kinds give the same predictions (flattened rows reshaped, with a note)
    flat = xt.reshape(len(xt), -1)
    np.save(tmp_path / "x.npy", flat)
    np.savez(tmp_path / "x.npz", x=xt, y=yt)
    np.savetxt(tmp_path / "x.csv", flat[:50], delimiter=",", fmt="%d",
               header=",".join(f"p{i}" for i in range(784)), comments="")
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({f"p{i}": flat[:50, i] for i in range(784)}), tmp_path / "x.parquet")
    for name, rows in (("x.npy", 2000), ("x.npz", 2000), ("x.csv", 50), ("x.parquet", 50)):
        o = tmp_path / (name + ".out.npy")
        assert main(["predict", str(model), str(tmp_path / name), "-o", str(o)]) == 0
        np.testing.assert_allclose(np.load(o), want[:rows], rtol=1e-6, atol=1e-7)
    assert "reshaped to (n, 28, 28)" in capsys.readouterr().err
    assert main(["predict", str(model), str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.h5")]) == 2
    assert "expected a name ending in .npz" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((3, 7)))
    assert main(["predict", str(model), str(tmp_path / "bad.npy")]) == 2
    assert "wrong input width" in capsys.readouterr().err
