"""The model's regularized variables, in the order the trainer adds their penalties: one
list shared by the Python step (``trainer.regularization``) and the native step
(``native_step``), so that both sum the penalties and add their gradients in one order."""
from __future__ import annotations

import numpy as np


def reg_list(model):
    """The regularized variables [(layer, variable name, regularizer)], and the
    ActivityRegularization nodes (variable None), cached on the model (``_reg_items``; None
    invalidates it), rebuilt when the arena's layout or the model-wide regularizer changes."""
    key = (model.arena.version, id(model.regularizer))
    if model._reg_items is None or model._reg_key != key:
        items, biggest = [], 0
        for layer, s, _ in model.arena.entries:
            for r in (s.regularizer, model.regularizer if s.name == "kernel" else None):
                if r:
                    items.append((layer, s.name, r))
                    biggest = max(biggest, s.size)
        items += [(n, None, None) for n in model._nodes if getattr(n.layer, "adds_activity_loss", False)]
        model._reg_items, model._reg_key = items, key
        model._reg_scratch = np.empty(biggest, dtype=model.dtype)
    return model._reg_items


def activity_penalty(model):
    """The penalties of the last forward pass's ActivityRegularization calls (a shared
    layer's later calls from their per-call copies)."""
    return sum((n.layer if n.call is None else n.call.obj).activity_loss or 0.0
               for n, vname, _ in reg_list(model) if vname is None)
