"""The examples reproduce the notes' experiments (issue 12): defaults and data splits,
checked without running the long trainings."""
import importlib.util
import os
import sys

import numpy as np

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(name.replace(".py", ""), os.path.join(EXAMPLES, name))
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, EXAMPLES)
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(EXAMPLES)
    return mod


def test_transfer_example_is_the_notes_sandal_vs_shirt_with_200_samples():
    ex = load("07_transfer_learning.py")
    assert ex.NOTES_PAIR == (5, 6) and ex.N_SMALL == 200
    assert ex.NOTES == {"A": "> 90%", "B": "97.2%", "B on A": "99.25%"}
    y = np.arange(20) % 10
    x = y[:, None].astype(np.float32)
    (xa, ya), (xb, yb) = ex.split(x, y, (5, 6))
    assert sorted(set(ya)) == list(range(8)) and not np.isin(xa[:, 0], [5, 6]).any()
    assert list(ya[:10]) == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]      # 7, 8, 9 -> 5, 6, 7
    assert list(xb[:, 0]) == [5, 6, 5, 6] and list(yb) == [0, 1, 0, 1]  # shirt is the positive class


def test_transfer_example_validates_on_a_dev_split_of_the_training_set(monkeypatch):
    ex = load("07_transfer_learning.py")
    x = np.arange(6000 * 784, dtype=np.uint8).reshape(6000, 28, 28) % 251
    y = np.arange(6000) % 10
    xt, yt = x[:100], y[:100]
    monkeypatch.setattr(ex, "load_fashion_mnist", lambda download=False: ((x, y), (xt, yt)))
    (xtr, ytr), (xd, yd), (xte, yte), source = ex.load()
    assert source == "full Fashion-MNIST"
    assert len(yd) == ex.N_DEV == 5000 and len(ytr) == 1000 and len(yte) == 100
    np.testing.assert_array_equal(xd[0], x[0].reshape(-1) / np.float32(255))  # dev = training images
