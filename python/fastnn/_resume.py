"""fit's side of the ``BackupAndRestore`` protocol (``fastnn/backup.py`` documents it).

The trainer finds the callbacks that take part by duck typing (an attribute
``_fit_protocol == "backup"``), so it never imports the callback, which sits above it.
What fit hands to a backup as its own state (``EpochState.get``):

- ``shuffle_key``: the key of the epoch order (``fastnn._shuffle``); the order of epoch
  ``e`` is a function of (key, e), so the key is all the shuffling state there is;
- ``num_samples``, ``batch_size``, ``steps``, ``metrics``: what the backup was made on,
  checked on resume (another data set or batch size cannot resume exactly);
- the epoch's running sums (loss, data loss, samples seen) and each metric's running
  state, for a backup made in the middle of an epoch (``save_freq=N``).
"""
from __future__ import annotations

import numpy as np


def backups(callbacks):
    """The callbacks of fit's list that follow the backup protocol (at most one)."""
    found = [cb for cb in callbacks if getattr(cb, "_fit_protocol", None) == "backup"]
    if len(found) > 1:
        raise ValueError(f"callbacks: expected at most one BackupAndRestore, got {len(found)}")
    return found


def _metric_state(m):
    if hasattr(m, "get_state"):
        return m.get_state()
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(m).items()
            if isinstance(v, (bool, int, float, np.ndarray, np.generic))}


def _set_metric_state(m, state):
    if hasattr(m, "set_state"):
        m.set_state(state)
        return
    for k, v in state.items():
        cur = getattr(m, k)
        if isinstance(cur, np.ndarray):
            cur[...] = v
        else:
            setattr(m, k, type(cur)(v))


class EpochState:
    """The trainer's state a backup carries: see the module docstring. ``runner`` holds the
    running sums (``total``, ``data``, ``seen``), the metrics and the batch source."""

    def __init__(self, runner):
        self.runner = runner

    def _facts(self):
        b, r = self.runner.batches, self.runner
        facts = {k: getattr(b, k, None) for k in ("num_samples", "batch_size", "steps")}  # None: unknown
        facts = {k: None if v is None else int(v) for k, v in facts.items()}
        facts["metrics"] = [m.name for m in r.metrics]
        return facts

    def get(self):
        r = self.runner
        state = self._facts()
        state.update(shuffle_key=getattr(r.batches, "key", None), total=float(r.total), data=float(r.data),
                     seen=int(r.seen), metric_states=[_metric_state(m) for m in r.metrics])
        return state

    def check(self, state):
        """ValueError when ``state`` (from a backup) was not made by a fit like this one."""
        if not isinstance(state, dict):
            raise ValueError(f"the backup's trainer state is a {type(state).__name__}, expected a dict")
        facts = self._facts()
        saved = {k: state.get(k) for k in facts}
        if saved != facts:
            raise ValueError(f"the backup was made by a fit with {saved}, this fit has {facts}: an exact "
                             f"resume needs the same data, batch size and metrics")
        k = state.get("shuffle_key")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int)):
            raise ValueError(f"the backup's shuffle key is {k!r}, expected an int or None")
        if not isinstance(state.get("metric_states"), list) or len(state["metric_states"]) != len(facts["metrics"]):
            raise ValueError("the backup's metric states do not match this fit's metrics")

    def set(self, state):
        r = self.runner
        if hasattr(r.batches, "key") and state["shuffle_key"] is not None:
            r.batches.key = state["shuffle_key"]
        r.total, r.data, r.seen = float(state["total"]), float(state["data"]), int(state["seen"])
        for m, s in zip(r.metrics, state["metric_states"]):
            _set_metric_state(m, s)


def bind(callbacks, runner):
    """Step 1 of the protocol: bind the backup (if any) to fit's callbacks and state."""
    found = backups(callbacks)
    state = EpochState(runner)
    for b in found:
        b.bind(callbacks, state.get, state.check)
    return found, state


def restore(found, state, initial_epoch):
    """Step 2, after every on_train_begin: (first epoch, batches of it already done)."""
    if not found:
        return initial_epoch, 0
    resumed = found[0].restore()
    if resumed is None:
        return initial_epoch, 0
    state.set(resumed["trainer"])
    return int(resumed["epoch"]), int(resumed["step"])
