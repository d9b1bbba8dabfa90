"""Training time per epoch, side by side: fastnn, PyTorch, JAX and Keras 3 on JAX.

    PYTHONPATH=python python3 bench/compare.py train [--quick] [--threads 2]
    PYTHONPATH=python python3 bench/compare_train.py [--batches 32,128,512] [--fraction 0.25]
        [--rounds 3] [--threads 2] [--no-keras] [--no-breakdown] [--no-mixed]

The course notes' MLP 784-512-256-256-128-10 (ReLU, softmax output), He-normal
init, Adam 1e-3 (epsilon 1e-7, Keras's), sparse categorical cross-entropy, on
the full Fashion-MNIST training set (/usr/share/datasets/fashion-mnist), at
each batch size:
  - fastnn: ``model.fit(epochs=1)``;
  - PyTorch fp32: ``torch.optim.Adam(fused=True)``, batches indexed from
    pre-made tensors (its fastest CPU setting);
  - JAX ``jit``: ``value_and_grad`` + ``optax.adam`` as ONE compiled step that
    also gathers its batch from the device-resident training set;
  - Keras 3 with KERAS_BACKEND=jax (where installed): ``model.fit(epochs=1)``.
With --mixed (the default), two more contenders join the same alternation (issue 15):
  - fastnn mixed: the same model built under
    ``mixed_precision.set_global_policy("mixed_bfloat16")`` (bf16 GEMMs, float32
    master weights, Adam state and loss);
  - PyTorch bf16: the fp32 PyTorch contender with its forward and loss under
    ``torch.autocast("cpu", dtype=torch.bfloat16)`` (backward outside it, as the
    autocast recipe says; fused Adam on the float32 master weights);
and their own table: seconds per epoch, fastnn mixed / torch bf16, fastnn mixed /
fastnn fp32. The fp32 table's "best peer" is over the fp32 peers only.
Contenders run one epoch each in alternation, round after round, with pauses
(after one warm-up epoch each); medians over rounds; "ratio" = fastnn / the
fastest peer. An "epoch" is the first ``--fraction`` of the 60,000 images
(default 0.25: 15,000; --quick 0.1 and 2 rounds), the same slice for every
contender; seconds are scaled to a full 60,000-image epoch (x 1/fraction).
Threads: fastnn, PyTorch and OpenBLAS are set to --threads; XLA (JAX, Keras)
uses its own pool over the machine's cores (this project's machine has 2).

Then fastnn's time per step, over one instrumented epoch per batch size:
  - the native step (the default: fit's native epoch, ``CHUNK_ROWS`` rows of
    steps per ``_core`` call, each batch gathered in the core): the whole fit
    step, split into the core's parts as the core times them
    (``_core._testing.set_step_profiling``: Dense forward products with their
    bias and activation epilogues, Dense backward products with their fused act'
    and db, the other layers, the loss, the optimizer), the rest of the core calls
    (the batch gathers and argument checks), the gathers made in Python (the
    last partial batch's) and Python (fit's loop, metrics, progress);
  - the Python-path step (``FASTNN_NATIVE_STEP=0``, the reference the native
    step matches bitwise) by kernel family, measured by wrapping the
    ``fastnn.ops`` functions the layers call (the native step bypasses them all,
    so it cannot be split this way; a wrapper costs ~0.3 us a call, so "Python"
    is slightly overstated): GEMM (matmul and the backward products),
    elementwise (activations, softmax, column sums, dropout), BatchNorm, loss,
    optimizer (updates, clipping), gather (``take_rows``), and Python
    (everything else: fit's loop, callbacks, metrics, layer bookkeeping).
Target (issue 14): fastnn <= 0.5x the best fp32 peer at batch 32 and 128, <= 0.75x at 512.
Target (issue 15, AVX512-BF16 without AMX): fastnn mixed <= 0.7x fastnn fp32 at batch 512
(on an AMX machine: <= 0.7x PyTorch bf16 autocast).
"""
from __future__ import annotations

import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import train_fashion  # noqa: E402

import fastnn  # noqa: E402
from fastnn import mixed_precision, ops  # noqa: E402

LAYERS = (784,) + tuple(train_fashion.HIDDEN) + (10,)
LR, EPS = 1e-3, 1e-7


def fastnn_contender(x, y, bs, policy="float32"):
    mixed_precision.set_global_policy(policy)
    try:
        model = train_fashion.build(False)
    finally:
        mixed_precision.set_global_policy("float32")
    state = {"epoch": 0}

    def run():
        model.fit(x, y, epochs=1, batch_size=bs, verbose=0, seed=state["epoch"])
        state["epoch"] += 1
    return run, model


def torch_contender(x, y, bs, autocast=False):
    """PyTorch fp32, or with autocast its forward and loss under bf16 autocast."""
    import contextlib

    import torch
    from torch import nn
    torch.manual_seed(0)
    mods, d = [], LAYERS[0]
    for units in LAYERS[1:-1]:
        lin = nn.Linear(d, units)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        mods += [lin, nn.ReLU()]
        d = units
    out = nn.Linear(d, LAYERS[-1])
    nn.init.kaiming_normal_(out.weight)
    nn.init.zeros_(out.bias)
    net = nn.Sequential(*mods, out)
    opt = torch.optim.Adam(net.parameters(), lr=LR, eps=EPS, fused=True)
    lossf = nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    n = len(x)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else contextlib.nullcontext

    def run():
        net.train()
        perm = torch.randperm(n)
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            with ctx():
                loss = lossf(net(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
    return run


def jax_contender(x, y, bs):
    import jax
    import jax.numpy as jnp
    import optax
    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(LAYERS[:-1], LAYERS[1:]):
        key, sub = jax.random.split(key)
        w = jax.random.normal(sub, (fan_in, fan_out), jnp.float32) * np.float32(np.sqrt(2.0 / fan_in))
        params.append((w, jnp.zeros((fan_out,), jnp.float32)))
    tx = optax.adam(LR, eps=EPS)
    opt_state = tx.init(params)
    xd, yd = jax.device_put(x), jax.device_put(y.astype(np.int32))

    def loss_fn(p, xb, yb):
        h = xb
        for w, b in p[:-1]:
            h = jax.nn.relu(h @ w + b)
        logits = h @ p[-1][0] + p[-1][1]
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def step(p, s, idx):
        loss, g = jax.value_and_grad(loss_fn)(p, xd[idx], yd[idx])
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    state = {"p": params, "s": opt_state, "rng": np.random.default_rng(0)}
    n = len(x)

    def run():
        perm = state["rng"].permutation(n).astype(np.int32)
        p, s = state["p"], state["s"]
        loss = None
        for i in range(0, n, bs):
            p, s, loss = step(p, s, perm[i:i + bs])
        loss.block_until_ready()
        state["p"], state["s"] = p, s
    return run


def keras_contender(x, y, bs):
    import keras
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((LAYERS[0],))] +
                             [keras.layers.Dense(u, activation="relu", kernel_initializer="he_normal")
                              for u in LAYERS[1:-1]] +
                             [keras.layers.Dense(LAYERS[-1], activation="softmax", kernel_initializer="he_normal")])
    model.compile(keras.optimizers.Adam(LR, epsilon=EPS), "sparse_categorical_crossentropy")

    def run():
        model.fit(x, y, batch_size=bs, epochs=1, verbose=0, shuffle=True)
    return run


def available(name):
    try:
        if name == "torch":
            import torch  # noqa: F401
        elif name == "jax":
            import jax  # noqa: F401
            import optax  # noqa: F401
        elif name == "keras":
            import keras
            if keras.backend.backend() != "jax":
                return False
        return True
    except ImportError:
        return False


def alternate(contenders, rounds, pause):
    """Median seconds of one call of each contender in alternation, after one warm-up each."""
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


FAMILIES = {
    "GEMM": ("matmul", "matmul_act_grad", "matmul_bias_grad"),
    "elementwise": ("activation", "activation_grad", "softmax", "log_softmax", "column_sum", "dropout"),
    "BN": ("batchnorm_forward", "batchnorm_backward"),
    "loss": ("softmax_cross_entropy", "binary_cross_entropy_with_logits", "mean_squared_error"),
    "optimizer": ("adam_update", "sgd_update", "rmsprop_update", "adagrad_update", "clip_by_global_norm",
                  "clip_by_value"),
    "gather": ("take_rows",),
}


class _Timed:
    """Replaces functions by timed wrappers (module attribute by attribute) while in use:
    ``spent[key]`` accumulates the seconds of every call; the originals come back on exit."""

    def __init__(self, spent, targets):
        self.spent, self.targets, self.real = spent, targets, []  # targets: (module, name, key)

    def __enter__(self):
        for mod, name, key in self.targets:
            if not hasattr(mod, name):
                continue
            fn = getattr(mod, name)

            def timed(*a, _fn=fn, _key=key, **k):
                t0 = time.perf_counter()
                r = _fn(*a, **k)
                self.spent[_key] += time.perf_counter() - t0
                return r
            self.real.append((mod, name, fn))
            setattr(mod, name, timed)
        return self

    def __exit__(self, *exc):
        for mod, name, fn in reversed(self.real):
            setattr(mod, name, fn)


def _timed_fit(model, x, y, bs, native, targets, keys):
    """One epoch with the native step on or off (FASTNN_NATIVE_STEP, read at every fit) and the
    `targets` timed: ({key: s per step}, total s per step)."""
    spent = {k: 0.0 for k in keys}
    before = os.environ.get("FASTNN_NATIVE_STEP")
    os.environ["FASTNN_NATIVE_STEP"] = "1" if native else "0"
    try:
        with _Timed(spent, targets):
            t0 = time.perf_counter()
            model.fit(x, y, epochs=1, batch_size=bs, verbose=0, seed=99)
            total = time.perf_counter() - t0
    finally:
        if before is None:
            del os.environ["FASTNN_NATIVE_STEP"]
        else:
            os.environ["FASTNN_NATIVE_STEP"] = before
    steps = -(-len(x) // bs)
    return {k: v / steps for k, v in spent.items()}, total / steps


def breakdown(model, x, y, bs):
    """The Python-path step (native step off) by kernel family, seconds per step over one
    instrumented epoch: {family: s, 'Python': s, 'total': s}."""
    targets = [(ops, name, fam) for fam, names in FAMILIES.items() for name in names]
    out, total = _timed_fit(model, x, y, bs, False, targets, FAMILIES)
    out["Python"] = total - sum(out.values())
    out["total"] = total
    return out


def mixed_contenders(x, y, bs, torch_ok):
    """The issue-15 contenders: fastnn under mixed_bfloat16, PyTorch under bf16 autocast."""
    out = {"fastnn mixed": fastnn_contender(x, y, bs, "mixed_bfloat16")[0]}
    if torch_ok:
        out["torch bf16"] = torch_contender(x, y, bs, autocast=True)
    return out


def mixed_row(bs, med, scale):
    """[batch, fastnn fp32, fastnn mixed, torch bf16, mixed/torch bf16, mixed/fp32] from median seconds."""
    mixed = med["fastnn mixed"]
    tb = med.get("torch bf16", float("nan"))
    return [bs, common.fmt(scale * med["fastnn"]), common.fmt(scale * mixed), common.fmt(scale * tb),
            f"{mixed / tb:.2f}x" if tb == tb else "-", f"{mixed / med['fastnn']:.2f}x"]


def print_mixed_table(rows, rounds, threads):
    from fastnn import _core
    common.print_table(f"mixed precision: seconds per 60k-image epoch (median of {rounds} alternating rounds, "
                       f"same rounds as above), threads={threads}, bf16 kernel {_core.bf16_kernel()}",
                       ["batch", "fastnn fp32", "fastnn mixed_bfloat16", "torch bf16 autocast",
                        "mixed/torch bf16", "mixed/fastnn fp32"], rows)
    print("target (AVX512-BF16, no AMX): mixed/fastnn fp32 <= 0.70x at 512; (AMX): mixed/torch bf16 <= 0.70x at 512")


def native_breakdown(model, x, y, bs):
    """The native step (on), seconds per step over one instrumented epoch: {'native': the core
    calls (the native epoch's run_batches, which gathers its batches too, and try_step for the
    last partial batch), 'gather': the batch gathers in Python (the last partial batch's),
    'rest': fit's loop, the metrics and the rest, 'total': s}."""
    from fastnn import _batches, _core, native_step
    targets = [(native_step, "try_step", "native"), (_core.NativeStep, "run_batches", "native"),
               (_batches, "_take_rows", "gather")]
    _core._testing.set_step_profiling(True)  # the step's parts, timed inside the core
    try:
        out, total = _timed_fit(model, x, y, bs, True, targets, ("native", "gather"))
        prof = _core._testing.step_profile()
    finally:
        _core._testing.set_step_profiling(False)
    steps = -(-len(x) // bs)
    parts = ("dense_forward", "dense_backward", "other_layers", "loss", "optimizer")
    for k in parts:
        out[k] = prof[k] / steps
    out["core other"] = out["native"] - sum(out[k] for k in parts)  # batch gathers, checks
    out["rest"] = total - out["native"] - out["gather"]
    out["total"] = total
    return out


def _us(part, total):
    return f"{1e6 * part:.0f} ({100 * part / total:.0f}%)"


def print_breakdown(models, x, y, batches):
    nrows, cols = [], ("dense_forward", "dense_backward", "other_layers", "loss", "optimizer", "core other",
                       "gather", "rest")
    for bs in batches:
        b = native_breakdown(models[bs], x, y, bs)
        nrows.append([bs, f"{1e6 * b['total']:.0f}"] + [_us(b[k], b["total"]) for k in cols])
    common.print_table("fastnn native step (the default): microseconds per training step (one instrumented epoch; "
                       "the core's parts timed inside it)",
                       ["batch", "step us", "Dense fwd (GEMM+bias+act)", "Dense bwd (GEMMs, fused act', db)",
                        "other layers", "loss", "optimizer", "core other (gathers, checks)",
                        "Python gathers", "Python (loop, metrics)"], nrows)
    fams = list(FAMILIES) + ["Python"]
    brows = []
    for bs in batches:
        b = breakdown(models[bs], x, y, bs)
        brows.append([bs, f"{1e6 * b['total']:.0f}"] + [_us(b[f], b["total"]) for f in fams])
    common.print_table("Python-path step by kernel family (FASTNN_NATIVE_STEP=0): microseconds per training step "
                       "(one instrumented epoch)", ["batch", "step us"] + fams, brows)


def run(quick: bool = False, threads: int = 2, batches=(32, 128, 512), fraction: float = 0.0, rounds: int = 0,
        keras: bool = True, show_breakdown: bool = True, pause: float = 0.5, mixed: bool = True) -> None:
    common.set_threads(threads)
    fraction = fraction or (0.1 if quick else 0.25)
    rounds = rounds or (2 if quick else 3)
    (x, y), _ = train_fashion.load_fashion_mnist()
    n = max(1, int(round(len(x) * fraction)))
    x, y = np.ascontiguousarray(x[:n]), np.ascontiguousarray(y[:n])
    scale = 60000 / n
    peers = [p for p in ("torch", "jax", "keras") if (p != "keras" or keras) and available(p)]
    print(f"train: {'-'.join(map(str, LAYERS))} relu, Adam; {n} of 60000 images per timed epoch "
          f"(fraction {fraction}), seconds scaled to a full epoch; {rounds} alternating rounds; "
          f"threads={threads}; peers: {', '.join(peers) or 'none installed'}")
    rows, mrows, models = [], [], {}
    for bs in batches:
        f_run, models[bs] = fastnn_contender(x, y, bs)
        contenders = {"fastnn": f_run}
        makers = {"torch": torch_contender, "jax": jax_contender, "keras": keras_contender}
        for p in peers:
            contenders[p] = makers[p](x, y, bs)
        if mixed:
            contenders.update(mixed_contenders(x, y, bs, "torch" in peers))
        med, samples = alternate(contenders, rounds, pause)
        if mixed:
            mrows.append(mixed_row(bs, med, scale))
        for k, v in samples.items():
            print(f"  [batch {bs}] {k}: " + " ".join(f"{scale * s:.2f}" for s in v) + " s")
        best = min((med[p], p) for p in peers) if peers else (float("nan"), "-")
        rows.append([bs] + [common.fmt(scale * med[k]) if k in med else "-" for k in ("fastnn",) + tuple(
            ("torch", "jax", "keras"))] + [best[1], f"{med['fastnn'] / best[0]:.2f}x"])
    common.print_table(f"seconds per 60k-image epoch (median of {rounds} alternating rounds), threads={threads}",
                       ["batch", "fastnn", "torch fp32 fused Adam", "jax jit+optax", "keras3 (jax)", "best peer",
                        "fastnn/best"], rows)
    print("target: <= 0.50x at batch 32 and 128, <= 0.75x at 512")
    if mixed:
        print_mixed_table(mrows, rounds, threads)
    if show_breakdown:
        print_breakdown(models, x, y, batches)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="32,128,512")
    ap.add_argument("--fraction", type=float, default=0.0, help="fraction of the 60k epoch timed (default 0.25)")
    ap.add_argument("--rounds", type=int, default=0, help="alternating rounds (default 3, --quick 2)")
    ap.add_argument("--pause", type=float, default=0.5, help="seconds of rest after each contender's epoch")
    ap.add_argument("--no-keras", action="store_true")
    ap.add_argument("--no-breakdown", action="store_true")
    ap.add_argument("--mixed", action=argparse.BooleanOptionalAction, default=True,
                    help="also time fastnn mixed_bfloat16 and PyTorch bf16 autocast (issue 15)")
    a = ap.parse_args()
    run(quick=a.quick, threads=a.threads, batches=[int(b) for b in a.batches.split(",")], fraction=a.fraction,
        rounds=a.rounds, keras=not a.no_keras, show_breakdown=not a.no_breakdown, pause=a.pause, mixed=a.mixed)
