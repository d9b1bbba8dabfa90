"""Saving and loading models: ``save_model`` / ``load_weights`` write and read the file
(``fastnn.modelfile``, below the graph); ``load_model`` builds the model it describes.

>>> import fastnn, tempfile, os, numpy as np
>>> from fastnn.layers import Dense
>>> m = fastnn.Sequential([Dense(2, input_dim=3)]); m.compile("sgd", "mse")
>>> path = os.path.join(tempfile.mkdtemp(), "m.npz"); m.save(path)
>>> bool(np.array_equal(fastnn.load_model(path).get_weights()[0], m.get_weights()[0]))
True
"""
from __future__ import annotations

import os

import numpy as np  # noqa: F401  (the numpy the file writer uses; tests patch np.savez through here)

from . import losses as _losses
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from .graph import Model, Sequential
from .modelfile import FORMAT, VERSION, _read, _set_layer_arrays, load_weights, save_model  # noqa: F401

_CLASSES = {"Sequential": Sequential, "Model": Model}


def load_model(filepath, compile=True):
    """A model saved with ``model.save``: same architecture, weights, compile settings and
    optimizer state, so it predicts identically and continues training identically."""
    cfg, data = _read(filepath)
    filepath = os.fspath(filepath)
    try:
        return _build(cfg, data, filepath, compile)
    except ValueError as e:
        if filepath in str(e):
            raise
        raise ValueError(f"{filepath}: invalid model config: {e}") from None
    except (KeyError, TypeError, AttributeError, IndexError, MemoryError, RecursionError) as e:
        # a config that names only known classes but with missing or wrong fields
        raise ValueError(f"{filepath}: invalid model config ({type(e).__name__}: {e})") from None


def _build(cfg, data, filepath, compile):
    cls = _CLASSES.get(cfg.get("class_name"))
    if cls is None:
        raise ValueError(f"{filepath}: unknown model class {cfg.get('class_name')!r}")
    model = cls.from_config(cfg["config"])
    model._ensure_placed()
    _set_layer_arrays(model, data, filepath)
    c = cfg.get("compile")
    if compile and c is not None:
        model.compile(optimizer=_optimizers.get(c["optimizer"]), loss=_losses.get(c["loss"]),
                      metrics=c["metrics"], regularizer=_regularizers.get(c["regularizer"]))
        opt = model.optimizer
        if "optimizer/iterations" in data:
            opt.build(model.arena.size, model.dtype)
            for slot in opt.slots:
                key = f"optimizer/{slot}"
                if key not in data or data[key].shape != opt.state[slot].shape or data[key].dtype.kind != "f":
                    raise ValueError(f"{filepath}: optimizer state {key} is missing or has the wrong shape")
                opt.state[slot][...] = data[key]
            opt.iterations = int(data["optimizer/iterations"])
            opt.epoch = int(data["optimizer/epoch"])
    return model
