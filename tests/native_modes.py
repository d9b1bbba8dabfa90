"""Shared by the native-step test files of label smoothing, ActivityRegularization and input
dropout (tests/test_native_step_smoothing.py, _activity.py, _input_dropout.py): one training run
in each of three modes, compared bit for bit."""
import numpy as np

from fastnn import native_step
from test_native_epoch import _EPOCH_STEPS
from test_native_step import _train


def fit_mode(monkeypatch, mode, build, loss, opt, y, dtype, record=None, **kw):
    """test_native_step._train's (state, history, native steps) in mode "python"
    (FASTNN_NATIVE_STEP=0), "batch" (the native step batch by batch) or "epoch" (the native
    epoch, 48 rows a call); record(layers), when given, adds {name: array} of the built layers'
    state after the run (what the arena does not hold) to the state."""
    monkeypatch.setattr(native_step, "CHUNK_ROWS", 48)
    monkeypatch.setattr(native_step, "epoch_steps", _EPOCH_STEPS if mode == "epoch" else (lambda *a: None))
    made = []

    def keep():
        made[:] = build()
        return made
    state, history, n = _train(monkeypatch, mode != "python", keep, loss, opt, y, dtype, **kw)
    if record is not None:
        state.update(record(made))
    return state, history, n


def case_runner(cases, record=None):
    """fit(monkeypatch, mode, case, dtype, **kw): fit_mode's run of cases[case] (layers, loss,
    optimizer, labels), with record."""
    def fit(monkeypatch, mode, case, dtype, **kw):
        build, loss, opt, y = cases[case]
        return fit_mode(monkeypatch, mode, build, loss, opt, y, dtype, record=record, **kw)
    return fit


def same(a, b):
    """Two runs' states bitwise equal, and their histories exactly."""
    assert sorted(a[0]) == sorted(b[0])
    for k in a[0]:
        np.testing.assert_array_equal(a[0][k], b[0][k], err_msg=k)  # bitwise (NaN equal to NaN)
    assert a[1] == b[1]


def check_modes(fit, steps=12, **kw):
    """fit(mode, **kw) in the three modes: no native step in "python", ``steps`` in "batch" and
    "epoch" (12: every step of two epochs of 90 rows at batch 16), each bitwise the Python
    step's. Returns the Python step's run."""
    ref = fit("python", **kw)
    assert ref[2] == 0
    for mode in ("batch", "epoch"):
        got = fit(mode, **kw)
        assert got[2] == steps, mode
        same(got, ref)
    return ref
