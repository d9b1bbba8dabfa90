"""The one case table of the bench scripts: the pytest-benchmark suites (bench_*.py),
the ratio runners (compare_*.py, via compare.py) and the pass timers (norm_passes.py)
take their shapes and inputs from here, so a case is added or changed in one place.
"""
from __future__ import annotations

import numpy as np

MLP = (784, 512, 256, 256, 128, 10)  # the course notes' network
ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "swish", "softplus")
ELTWISE_SIZES = (1 << 20, 1 << 24)    # elements: L3-sized and DRAM-sized
LOSS_SHAPES = ((128, 10), (4096, 1000))  # (batch, classes)
NORM_SHAPES = ((128, 512), (256, 1024), (4096, 512))  # (batch, features)
NORM_OVERHEAD_SHAPE = (2, 16)         # per-call overhead row of norm_passes.py


def mlp_shapes():
    """The parameter shapes of MLP: (fan_out, fan_in) kernels and (fan_out,) biases."""
    shapes = []
    for fan_in, fan_out in zip(MLP[:-1], MLP[1:]):
        shapes += [(fan_out, fan_in), (fan_out,)]
    return shapes


def mlp_products(batch):
    """The three training products of each Dense layer of MLP at a batch size, as
    (label, m, n, k, trans_a, trans_b): forward X·W, backward dX = dY·Wᵀ and dW = Xᵀ·dY."""
    out = []
    for fan_in, fan_out in zip(MLP[:-1], MLP[1:]):
        tag = f"b{batch} {fan_in}-{fan_out}"
        out += [(f"{tag} fwd X·W", batch, fan_out, fan_in, False, False),
                (f"{tag} dX=dY·Wt", batch, fan_in, fan_out, False, True),
                (f"{tag} dW=Xt·dY", fan_in, fan_out, batch, True, False)]
    return out


MLP_PARAMS = sum(int(np.prod(s)) for s in mlp_shapes())  # 633,226
OPTIM_SIZES = (MLP_PARAMS, 10_000_000)  # arena lengths: the MLP, and a 10M arena


def shape_id(shape):
    return "x".join(str(d) for d in shape)


def eltwise_inputs(n, seed=0):
    """(x, dy) float32 of n elements; x spread over the activations' interesting range."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 3).astype(np.float32), rng.standard_normal(n).astype(np.float32)


def loss_inputs(m, classes, seed=0):
    """(logits, integer labels, probability rows) float32."""
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((m, classes)) * 3).astype(np.float32)
    ids = rng.integers(0, classes, m).astype(np.int64)
    probs = rng.random((m, classes)).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    return z, ids, probs


def norm_inputs(m, n, seed=0):
    """(x, dy, gamma, beta, running_mean, running_var) float32 for BatchNorm."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n)).astype(np.float32)
    dy = rng.standard_normal((m, n)).astype(np.float32)
    gamma = rng.standard_normal(n).astype(np.float32)
    beta = rng.standard_normal(n).astype(np.float32)
    return x, dy, gamma, beta, np.zeros(n, np.float32), np.ones(n, np.float32)


def data_fixture(params, make, ids=shape_id):
    """A module-scoped pytest fixture named ``data``: ``make(*case)`` for each case of
    ``params`` (a scalar case is passed as one argument)."""
    import pytest

    def data(request):
        p = request.param
        return make(*p) if isinstance(p, tuple) else make(p)
    return pytest.fixture(scope="module", params=params, ids=ids, name="data")(data)
