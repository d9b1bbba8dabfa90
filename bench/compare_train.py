"""Training time per epoch: fastnn vs PyTorch vs scikit-learn, Fashion-MNIST, the course notes' net.

    PYTHONPATH=python python3 bench/compare.py train [--quick] [--threads 2]
    PYTHONPATH=python python3 bench/compare_train.py [--quick] [--threads 2]

784-512-256-256-128-10 ReLU, He init, Adam 1e-3, batch 128, with and without
BatchNormalization after each hidden Dense. PyTorch: same net and init,
torch.optim.Adam(fused=True), batches indexed from pre-made tensors (its
fastest CPU setting). scikit-learn: MLPClassifier(solver="adam"), one
partial_fit per epoch (no BatchNorm variant: sklearn has none).
Contenders run one epoch each in alternation, round after round, with pauses;
medians over rounds. Also: the share of fastnn's epoch spent in GEMM (ops.matmul)
vs outside it. --quick uses 12,800 training samples and 2 rounds.
Targets: fastnn <= 0.6x PyTorch and <= 0.3x scikit-learn per epoch.
"""
from __future__ import annotations

import pathlib
import statistics
import sys
import time
import warnings

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import train_fashion  # noqa: E402

import fastnn  # noqa: E402
from fastnn import ops  # noqa: E402


def fastnn_epoch(x, y, batchnorm):
    model = train_fashion.build(batchnorm)
    state = {"epoch": 0}

    def run():
        model.fit(x, y, epochs=1, batch_size=128, verbose=0, seed=state["epoch"])
        state["epoch"] += 1
    return run, model


def gemm_share(model, x, y):
    """(GEMM seconds, epoch seconds) of one instrumented fastnn epoch."""
    real = ops.matmul
    spent = [0.0]

    def timed(*a, **k):
        t0 = time.perf_counter()
        r = real(*a, **k)
        spent[0] += time.perf_counter() - t0
        return r
    ops.matmul = timed
    try:
        t0 = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=128, verbose=0, seed=99)
        total = time.perf_counter() - t0
    finally:
        ops.matmul = real
    return spent[0], total


def torch_epoch(x, y, batchnorm):
    import torch
    from torch import nn
    torch.manual_seed(0)
    layers, d = [], 784
    for units in train_fashion.HIDDEN:
        lin = nn.Linear(d, units)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.ReLU()]
        if batchnorm:
            layers.append(nn.BatchNorm1d(units, momentum=0.01, eps=1e-3))
        d = units
    out = nn.Linear(d, 10)
    nn.init.kaiming_normal_(out.weight)
    nn.init.zeros_(out.bias)
    net = nn.Sequential(*layers, out)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    lossf = nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    n = len(x)

    def run():
        net.train()
        perm = torch.randperm(n)
        for s in range(0, n, 128):
            idx = perm[s:s + 128]
            opt.zero_grad(set_to_none=True)
            loss = lossf(net(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
    return run


def sklearn_epoch(x, y):
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=train_fashion.HIDDEN, activation="relu", solver="adam",
                        batch_size=128, learning_rate_init=1e-3, alpha=0.0, random_state=0)
    classes = np.arange(10)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(x, y, classes=classes)
    return run


def alternate(contenders, rounds, pause=0.5):
    """Median seconds of one call of each contender, run in alternation (after one warm-up each)."""
    for fn in contenders.values():
        fn()
        time.sleep(pause)
    samples = {k: [] for k in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
            time.sleep(pause)
    return {k: statistics.median(v) for k, v in samples.items()}, samples


def run(quick: bool = False, threads: int = 2, rounds: int = 0, samples: int = 0) -> None:
    common.set_threads(threads)
    (x, y), _ = train_fashion.load_fashion_mnist()
    if samples or quick:
        x, y = x[:samples or 12800], y[:samples or 12800]
    rounds = rounds or (2 if quick else 3)
    have_torch = common.have_torch()
    try:
        import sklearn  # noqa: F401
        have_sklearn = True
    except ImportError:
        have_sklearn = False
    rows = []
    for bn in (False, True):
        f_run, f_model = fastnn_epoch(x, y, bn)
        contenders = {"fastnn": f_run}
        if have_torch:
            contenders["torch"] = torch_epoch(x, y, bn)
        if have_sklearn and not bn:
            contenders["sklearn"] = sklearn_epoch(x, y)
        med, samples = alternate(contenders, rounds)
        gemm, total = gemm_share(f_model, x, y)
        t = med.get("torch", float("nan"))
        s = med.get("sklearn", float("nan"))
        rows.append(["+BN" if bn else "plain", len(x), common.fmt(med["fastnn"]), common.fmt(t), common.fmt(s),
                     common.fmt(med["fastnn"] / t), common.fmt(med["fastnn"] / s),
                     f"{100 * (1 - gemm / total):.0f}%"])
        for k, v in samples.items():
            print(f"  [{'+BN' if bn else 'plain'}] {k}: " + " ".join(f"{a:.2f}" for a in v) + " s")
    common.print_table(
        f"train: seconds per epoch (median of {rounds} alternating rounds), threads={threads}",
        ["net", "samples", "fastnn s", "torch s", "sklearn s", "fastnn/torch", "fastnn/sklearn",
         "outside GEMM"], rows)
    print("targets: fastnn/torch <= 0.6, fastnn/sklearn <= 0.3")
    if not have_torch:
        print("PyTorch not installed: its column is skipped")


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=0, help="alternating rounds (default 3, --quick 2)")
    ap.add_argument("--samples", type=int, default=0, help="first N training samples (default all)")
    a = ap.parse_args()
    run(quick=a.quick, threads=a.threads, rounds=a.rounds, samples=a.samples)
