"""Experiment 6: random search, coarse to fine.

The notes' recipe: search at random (not on a grid), scale parameters on a
log scale, a few epochs per trial first, then narrow the ranges around the
best trials and search again with longer runs. Trials run on a local
process pool (spawn) with --workers N, or in this process by default; on a
cluster pass a Dask client's executor instead (see fastnn.tuning).

    python examples/06_random_search.py [--trials 10] [--workers 2]
"""
import argparse
import warnings

from _common import fashion_mnist, have_matplotlib, out_path

import fastnn
from fastnn.layers import Dense, Dropout
from fastnn.tuning import (choice, format_trials, intlog, loguniform, process_executor,
                           random_search, refine, uniform)


def build(params, seed=0):
    """One model from one sampled configuration (module level: picklable for pools)."""
    fastnn.initializers.set_random_seed(seed)
    act = params["activation"]
    init = "he_normal" if act == "relu" else "glorot_uniform"
    l2 = fastnn.regularizers.L2(params["l2"])
    m = fastnn.Sequential([Dense(params["units"], activation=act, kernel_initializer=init,
                                 kernel_regularizer=l2, input_dim=784),
                           Dropout(params["dropout"], seed=seed),
                           Dense(10, activation="softmax", kernel_regularizer=l2)])
    m.compile(fastnn.optimizers.Adam(params["lr"]), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


SPACE = {"lr": loguniform(1e-5, 1e-1), "l2": loguniform(1e-7, 1e-1), "units": intlog(32, 512),
         "dropout": uniform(0.0, 0.6), "activation": choice(["relu", "tanh"])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--workers", type=int, default=0, help="process pool size (0: sequential)")
    args = ap.parse_args()
    (x, y), (xv, yv) = fashion_mnist()  # the subset's test split serves as the dev set here
    ex = process_executor(args.workers) if args.workers else None
    try:
        print(f"coarse: {args.trials} trials, 2 epochs each, on 3000 examples")
        coarse = random_search(build, SPACE, args.trials, x[:3000], y[:3000], (xv, yv), epochs=2,
                               batch_size=64, executor=ex, seed=0)
        print(format_trials(coarse))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fine_space = refine(SPACE, coarse, top_k=3)
        for w in caught:
            print("warning:", w.message)
        print("\nrefined space:", fine_space)
        print(f"\nfine: {args.trials} trials, 5 epochs each, on all {len(x)} examples")
        fine = random_search(build, fine_space, args.trials, x, y, (xv, yv), epochs=5,
                             batch_size=64, executor=ex, seed=1)
        print(format_trials(fine))
    finally:
        if ex is not None:
            ex.shutdown()
    print(f"\nbest: {fine[0].params} -> dev accuracy {fine[0].score:.4f}")
    if have_matplotlib():
        from fastnn.plots import _pyplot
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for trials, label, mk in ((coarse, "coarse", "o"), (fine, "fine", "s")):
            ok = [t for t in trials if t.error is None]
            ax.scatter([t.params["lr"] for t in ok], [t.score for t in ok], marker=mk, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("dev accuracy")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_path("06_random_search.png"), dpi=100)
        print(f"plot: {out_path('06_random_search.png')}")


if __name__ == "__main__":
    main()
