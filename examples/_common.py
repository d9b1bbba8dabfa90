"""Shared by the examples: the bundled Fashion-MNIST subset, standardized with
training statistics, and a place for the plots."""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import fastnn  # noqa: F401  (installed, or on PYTHONPATH)
except ImportError:  # a source checkout with the core built in place (tools/devbuild.sh)
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

from fastnn.datasets import load_default  # noqa: E402
from fastnn.preprocessing import StandardScaler  # noqa: E402

OUT = os.environ.get("FASTNN_EXAMPLES_OUT", os.path.join(HERE, "out"))


def out_path(name: str) -> str:
    """Where an example writes its plot (examples/out/ or $FASTNN_EXAMPLES_OUT)."""
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)


def fashion_mnist(n_train=None):
    """(x_train, y_train), (x_test, y_test): flattened float32 pixels
    standardized with the training set's mean and std (one scalar each)."""
    (x, y), (xt, yt) = load_default()
    if n_train is not None:
        x, y = x[:n_train], y[:n_train]
    x = x.reshape(len(x), -1).astype(np.float32) / 255
    xt = xt.reshape(len(xt), -1).astype(np.float32) / 255
    scaler = StandardScaler(per_feature=False).fit(x)
    return (scaler.transform(x), y.astype(np.int64)), (scaler.transform(xt), yt.astype(np.int64))


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        print("(matplotlib not installed: no plot; pip install 'fastnn[plot]')")
        return False


def epochs_arg(default):
    """The --epochs command-line argument (the one option of the comparison examples)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=default)
    return ap.parse_args().epochs


def plot_runs(curves, metrics, name, title):
    """fastnn.plots.compare_runs of the runs' histories into out_path(name), when matplotlib is there."""
    if have_matplotlib():
        from fastnn.plots import compare_runs
        compare_runs(curves, metrics, out_path(name), title=title)
        print(f"plot: {out_path(name)}")


def table(rows, header):
    """Print a plain table."""
    rows = [[str(c) for c in r] for r in rows]
    w = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(str(h).ljust(w[i]) for i, h in enumerate(header)))
    print("  ".join("-" * x for x in w))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
