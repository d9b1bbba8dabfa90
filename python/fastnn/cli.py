"""The ``fastnn`` command.

``fastnn train`` trains the course notes' MLP (784 -> hidden layers -> 10
softmax) on the Fashion-MNIST subset bundled with fastnn, so it runs on a fresh
machine with no network; ``--dataset fashion-mnist`` takes the full set (see
:func:`fastnn.datasets.load_fashion_mnist`). It standardizes the pixels with
training-set statistics, shows a progress bar, prints the test accuracy and
saves the model with its preprocessing inside (``Flatten``, ``Rescaling(1/255)``, the
fitted ``Normalization``), so the saved model takes raw uint8 images.

``fastnn predict MODEL INPUT [-o OUT]`` applies a saved model to a file of inputs
(see :mod:`fastnn.cli_predict`).

``fastnn info`` prints what :func:`fastnn.cpu_info` detects.

Examples::

    fastnn train
    fastnn train --hidden 512,256 --activation relu --batchnorm --dropout 0.2 --epochs 30
    fastnn train --dataset fashion-mnist --optimizer sgd --momentum 0.9 --lr 0.05
    fastnn predict fastnn-model.npz t10k-images-idx3-ubyte.gz -o predictions.npz
    fastnn info
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

__all__ = ["main", "build_parser", "build_mlp"]

_OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
_INITS = ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal",
          "lecun_uniform")


def _hidden(text: str):
    try:
        units = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden: expected comma-separated ints like "
                                         f"256,128, got {text!r}") from None
    if any(u < 1 for u in units):
        raise argparse.ArgumentTypeError(f"--hidden: units must be >= 1, got {text!r}")
    return units


def _positive(kind):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return v
    return parse


def _rate(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastnn`` command (``train`` and ``info``).

    >>> from fastnn.cli import build_parser
    >>> build_parser().parse_args(["train", "--epochs", "3"]).epochs
    3
    """
    p = argparse.ArgumentParser(prog="fastnn", description="Fast dense neural networks on the CPU.")
    sub = p.add_subparsers(dest="command", metavar="{train,predict,info}")
    sub.required = True

    t = sub.add_parser("train", help="train an MLP on Fashion-MNIST and report test accuracy",
                       description="Train the course notes' MLP on Fashion-MNIST (the bundled "
                       "subset by default: no download) and print its test accuracy.")
    t.add_argument("--dataset", choices=("bundled", "fashion-mnist"), default="bundled",
                   help="bundled: the 9,000/2,000-image subset shipped with fastnn (default); "
                        "fashion-mnist: the full 60,000/10,000 set, found or downloaded")
    t.add_argument("--data-path", default=None,
                   help="directory holding the full Fashion-MNIST files (with --dataset fashion-mnist)")
    t.add_argument("--hidden", type=_hidden, default=[256, 128],
                   help="hidden layer sizes, comma-separated (default 256,128)")
    t.add_argument("--activation", default="relu",
                   help="hidden activation: relu, leaky_relu, elu, selu, tanh, sigmoid, swish ... (default relu)")
    t.add_argument("--init", default=None, choices=_INITS,
                   help="kernel initializer (default: he_normal for ReLU-like, glorot_uniform otherwise)")
    t.add_argument("--optimizer", choices=_OPTIMIZERS, default="adam")
    t.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate (default 1e-3)")
    t.add_argument("--momentum", type=float, default=0.9, help="momentum for --optimizer sgd (default 0.9)")
    t.add_argument("--lr-schedule", choices=("cosine", "constant"), default="cosine",
                   help="cosine decay to 0 over the run (default) or constant")
    t.add_argument("--batch-size", type=_positive(int), default=128)
    t.add_argument("--epochs", type=_positive(int), default=20)
    t.add_argument("--batchnorm", action="store_true", help="BatchNormalization after each hidden Dense")
    t.add_argument("--dropout", type=_rate, default=0.2, help="dropout rate after each hidden layer (default 0.2)")
    t.add_argument("--l2", type=float, default=0.0, help="L2 regularization strength (default 0)")
    t.add_argument("--validation-split", type=_rate, default=0.0,
                   help="fraction of the training set held out for validation (default 0)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=_positive(int), default=None, help="fastnn threads (default: all cores)")
    t.add_argument("--output", default="fastnn-model.npz",
                   help="where to save the model, preprocessing included (default ./fastnn-model.npz)")
    t.add_argument("--no-save", action="store_true", help="do not save the model")
    t.add_argument("--quiet", action="store_true", help="no progress bar, only the result line")

    from .cli_predict import add_parser
    add_parser(sub)
    i = sub.add_parser("info", help="print the CPU features and the ISA path fastnn uses")
    i.add_argument("--json", action="store_true", help="print JSON")
    return p


def build_mlp(input_dim: int, num_classes: int, hidden=(256, 128), activation="relu",
              init=None, batchnorm=False, dropout=0.0, l2=0.0, seed=0):
    """The notes' MLP: ``Dense -> [BatchNorm] -> activation -> [Dropout]`` per
    hidden layer, then a softmax ``Dense(num_classes)``. Not compiled.

    >>> from fastnn.cli import build_mlp
    >>> m = build_mlp(784, 10, hidden=(64,))      # doctest: +SKIP
    >>> len(m.layers)                              # doctest: +SKIP
    4
    """
    from . import layers as L
    from . import regularizers
    from .models import Sequential

    relu_like = str(activation).lower() in ("relu", "leaky_relu", "elu", "selu", "swish", "silu")
    init = init or ("he_normal" if relu_like else "glorot_uniform")
    reg = {"kernel_regularizer": regularizers.L2(l2)} if l2 else {}
    model = Sequential()
    for k, units in enumerate(hidden):
        first = {"input_dim": input_dim} if k == 0 else {}
        if batchnorm:
            model.add(L.Dense(units, kernel_initializer=init, use_bias=False, **reg, **first))
            model.add(L.BatchNormalization())
            model.add(L.Activation(activation))
        else:
            model.add(L.Dense(units, activation=activation, kernel_initializer=init, **reg, **first))
        if dropout:
            model.add(L.Dropout(dropout, seed=seed + 1000 + k))
    first = {} if hidden else {"input_dim": input_dim}
    model.add(L.Dense(num_classes, activation="softmax", kernel_initializer="glorot_uniform",
                      **reg, **first))
    return model


def _load_data(args):
    from . import datasets
    if args.dataset == "bundled":
        return datasets.load_default()
    return datasets.load_fashion_mnist(args.data_path)


def _optimizer(args, steps_total):
    from . import optimizers, schedules
    lr = args.lr
    if args.lr_schedule == "cosine":
        lr = schedules.CosineDecay(args.lr, steps_total)
    name = args.optimizer
    if name == "sgd":
        return optimizers.SGD(learning_rate=lr, momentum=args.momentum)
    cls = {"adam": optimizers.Adam, "adamw": optimizers.AdamW, "rmsprop": optimizers.RMSprop,
           "adagrad": optimizers.Adagrad}[name]
    return cls(learning_rate=lr)


def with_preprocessing(mlp, x_train):
    """``Input(image shape) -> Flatten -> Rescaling(1/255) -> Normalization`` (one mean and
    variance over all pixels, adapted to ``x_train`` / 255) in front of the layers of
    ``mlp``: a model that takes raw uint8 images."""
    from . import layers as L
    from .models import Sequential
    norm = L.Normalization(axis=None)
    norm.adapt(x_train.reshape(len(x_train), -1).astype(np.float32) * np.float32(1 / 255))
    return Sequential([L.Input(x_train.shape[1:]), L.Flatten(), L.Rescaling(1 / 255), norm] + list(mlp.layers))


def _train(args) -> int:
    import fastnn
    from . import initializers

    if args.threads:
        fastnn.set_num_threads(args.threads)
    initializers.set_random_seed(args.seed)
    t0 = time.perf_counter()
    (x, y), (xt, yt) = _load_data(args)  # raw uint8 images: the model holds its preprocessing
    y = y.astype(np.int64)
    yt = yt.astype(np.int64)
    mlp = build_mlp(int(np.prod(x.shape[1:])), 10, args.hidden, args.activation, args.init, args.batchnorm,
                    args.dropout, args.l2, args.seed)
    model = with_preprocessing(mlp, x)
    n_fit = int(round(len(x) * (1 - args.validation_split)))
    steps = args.epochs * -(-n_fit // args.batch_size)
    model.compile(optimizer=_optimizer(args, steps), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    if not args.quiet:
        print(f"fastnn {fastnn.__version__} | isa {fastnn.cpu_info()['isa']} | "
              f"{fastnn.get_num_threads()} threads | {args.dataset}: {len(x)} train, "
              f"{len(xt)} test | hidden {args.hidden} {args.activation} | {args.optimizer} "
              f"lr {args.lr:g} ({args.lr_schedule})", flush=True)
    fit_kw = dict(epochs=args.epochs, batch_size=args.batch_size, verbose=0 if args.quiet else 1)
    if args.validation_split:
        fit_kw["validation_split"] = args.validation_split
    model.fit(x, y, **fit_kw)
    train_s = time.perf_counter() - t0
    result = model.evaluate(xt, yt, verbose=0)
    acc = _accuracy_of(result, model, xt, yt)
    print(f"test accuracy: {acc:.4f} ({len(xt)} images) | {train_s:.1f} s")
    if not args.no_save:
        model.save(args.output)
        print(f"saved the model (preprocessing included: it takes raw images) to {args.output}")
    return 0


def _accuracy_of(result, model, xt, yt):
    if isinstance(result, dict) and "accuracy" in result:
        return float(result["accuracy"])
    if isinstance(result, (list, tuple)) and len(result) >= 2:
        return float(result[1])
    return float((model.predict(xt).argmax(1) == yt).mean())


def _info(args) -> int:
    import fastnn
    info = fastnn.cpu_info()
    blocking = fastnn._core.gemm_blocking()
    if args.json:
        print(json.dumps(dict(info, gemm_blocking=blocking), indent=2))
        return 0
    feats = [k for k, v in info["features"].items() if v]
    print(f"fastnn {fastnn.__version__}")
    print(f"cpu:            {info['brand'] or info['vendor']}")
    print(f"isa in use:     {info['isa']}  (supported: {', '.join(info['supported_isas'])}; "
          f"compiled: {', '.join(info['compiled_isas'])})")
    print(f"threads:        {info['num_threads']}")
    print(f"features:       {' '.join(feats)}")
    print(f"compiler:       {info['compiler']}")
    print(f"build flags:    {info['build_flags']}")
    c = blocking["caches"]
    print(f"caches:         L1d {c['l1d'] >> 10} KiB, L2 {c['l2'] >> 10} KiB, L3 {c['l3'] >> 10} KiB "
          f"({c['cpuid_leaf']}; family {c['family']:#x} model {c['model']:#x} {blocking['uarch'] or 'unknown'})")
    print(f"gemm blocking:  {blocking['source']}")
    for key, s in blocking[info["isa"]].items():
        if isinstance(s, dict):
            print(f"  {info['isa']} {key:15s} MR x NR {s['mr']} x {s['nr']}, MC {s['mc']}, KC {s['kc']}, NC {s['nc']}")
    print(f"  transposed A (the Xᵀ of dW): {'packed' if blocking[info['isa']]['pack_trans_a'] else 'read in place'}")
    return 0


def main(argv=None) -> int:
    """Entry point of the ``fastnn`` console script; returns the exit status.

    >>> from fastnn.cli import main
    >>> main(["info"])          # doctest: +SKIP
    0
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "predict":
            from .cli_predict import run
            return run(args)
        return _info(args)
    except (FileNotFoundError, ValueError) as e:
        print(f"fastnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
