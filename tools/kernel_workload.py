"""A fixed workload touching every kernel family, for reliability checks: used alone and
from threads by tests/test_reliability.py (which execs this source in fresh interpreters)
and under valgrind by tools/leakcheck.sh. ``inputs(seed, dtype)`` makes the arrays,
``workload(d)`` returns every result, ``same(xs, ys)`` compares two result lists bitwise."""
import numpy as np
import fastnn
from fastnn import ops

def inputs(seed, dtype=np.float32):
    r = np.random.default_rng(seed)
    f = lambda *s: r.standard_normal(s).astype(dtype)
    return dict(a=f(150, 130), b=f(130, 170), bias=f(170), x=f(64, 40), g=f(40), be=f(40),
                labels=r.integers(0, 40, 64), p=f(5000), grad=f(5000))

def workload(d):
    out = []
    out.append(ops.matmul(d["a"], d["b"], bias=d["bias"], activation="tanh"))
    out.append(ops.matmul(d["a"], d["b"], trans_a=False, trans_b=False, alpha=0.5))
    out.append(ops.activation("swish", d["x"]))
    out.append(ops.activation_grad("elu", d["x"], x=d["x"]))
    out.append(ops.softmax(d["x"]))
    out.append(ops.log_softmax(d["x"]))
    rm, rv = np.zeros(40, d["x"].dtype), np.ones(40, d["x"].dtype)
    y, mean, invstd = ops.batchnorm_forward(d["x"], d["g"], d["be"], rm, rv)
    out += [y, mean, invstd, rm, rv]
    out += list(ops.batchnorm_backward(d["x"], d["x"], d["g"], mean, invstd))
    loss, dz = ops.softmax_cross_entropy(d["x"], d["labels"])
    out += [np.array(loss), dz]
    loss, dz = ops.binary_cross_entropy_with_logits(d["x"], (d["x"] > 0).astype(d["x"].dtype))
    out += [np.array(loss), dz]
    loss, dz = ops.mean_squared_error(d["x"], d["x"] * 0.5)
    out += [np.array(loss), dz]
    p, m, v = d["p"].copy(), np.zeros_like(d["p"]), np.zeros_like(d["p"])
    for step in range(1, 4):
        ops.adam_update(p, d["grad"], m, v, lr=1e-2, step=step)
    out += [p, m, v]
    p, vel = d["p"].copy(), np.zeros_like(d["p"])
    ops.sgd_update(p, d["grad"], vel, lr=0.1, momentum=0.9, nesterov=True)
    out += [p, vel]
    g = d["grad"].copy()
    out += [np.array(ops.clip_by_global_norm([g], 1.0)), g]
    out += list(ops.dropout(d["x"], 0.3, seed=7))
    out.append(ops.column_sum(d["x"]))
    out.append(ops.take_rows(d["b"], np.repeat(d["labels"], 100)))  # 4.4 MB: past the threading grain
    return out

def same(xs, ys):
    return len(xs) == len(ys) and all(x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(xs, ys))
