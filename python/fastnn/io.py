"""Loading models: ``load_model`` builds the model a file describes. Writing and reading
the file itself (``save_model``, ``load_weights``, the checks against the entries' headers)
is ``fastnn.modelfile``, below the graph; this module is above it (io imports graph, never
the reverse).

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

from . import _archive, _metric_files
from . import losses as _losses  # noqa: F401
from . import multi_io as _multi_io
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from .graph import Model, Sequential
from .modelfile import (EXECUTION_KEYS, FORMAT, MAX_CONFIG_BYTES, VERSION, _model_keys, _optimizer_keys,  # noqa: F401
                        _read_config, _read_entries, _set_layer_arrays, load_weights, save_model)

_CLASSES = {"Sequential": Sequential, "Model": Model}


def load_model(filepath, compile=True, max_bytes=None):
    """A model saved with ``model.save``: same architecture, weights, compile settings,
    optimizer state and layer state (BatchNormalization statistics, Dropout counters), so it
    predicts identically and continues training identically: saved after epoch k of
    ``fit(..., seed=s)``, ``fit(..., seed=s, initial_epoch=k)`` gives bitwise the weights of
    the uninterrupted fit (fixed thread count; epoch e's order depends on (s, e) only). With
    ``seed=None`` the order comes from fastnn's global generator; ``BackupAndRestore`` saves it.

    The file is checked before anything the size of a weight is allocated: the config
    against every entry's .npy header, each header against the zip's sizes. Entries the
    model does not use are never decompressed, and at most ``max_bytes`` (default
    ``fastnn._archive.MAX_LOAD_BYTES``, 4 GiB) are decompressed in all; a larger model
    needs a larger ``max_bytes``."""
    filepath = os.fspath(filepath)
    budget = _archive.Budget(max_bytes, filepath)
    with _archive.Archive(filepath) as ar:
        cfg = _read_config(ar, budget)
        try:
            return _build(cfg, ar, budget, filepath, compile)
        except ValueError as e:
            if filepath in str(e):
                raise
            raise ValueError(f"{filepath}: invalid model config: {e}") from None
        except (KeyError, TypeError, AttributeError, IndexError, MemoryError, RecursionError) as e:
            # a config that names only known classes but with missing or wrong fields
            raise ValueError(f"{filepath}: invalid model config ({type(e).__name__}: {e})") from None


def _build(cfg, ar, budget, filepath, compile):
    cls = _CLASSES.get(cfg.get("class_name"))
    if cls is None:
        raise ValueError(f"{filepath}: unknown model class {cfg.get('class_name')!r}")
    keys, size = _model_keys(cfg["config"], ar)
    c = cfg.get("compile") if compile else None
    if c is not None:
        keys += _optimizer_keys(c, size, ar)
        metrics, weighted = (_metric_files.deserialize_specs(c.get(k), k, budget)
                             for k in ("metrics", "weighted_metrics"))
    data = _read_entries(ar, keys, budget)
    model = cls.from_config(cfg["config"])
    model._ensure_placed()
    _set_layer_arrays(model, data, filepath)
    if c is not None:
        loss, loss_weights = _multi_io.loss_from_config(c["loss"])
        model.compile(optimizer=_optimizers.get(c["optimizer"]), loss=loss, loss_weights=loss_weights,
                      metrics=metrics, regularizer=_regularizers.get(c["regularizer"]),
                      weighted_metrics=weighted, **{k: c[k] for k in EXECUTION_KEYS if k in c})
        opt = model.optimizer
        if "optimizer/iterations" in data:
            opt.build(model.arena.size, model.dtype)
            for slot in opt.slots:
                key = f"optimizer/{slot}"
                if key not in data or data[key].shape != opt.state[slot].shape or data[key].dtype.kind != "f":
                    raise ValueError(f"{filepath}: optimizer state {key} is missing or has the wrong shape")
                opt.state[slot][...] = data[key]
            for k in ("iterations", "epoch"):
                if int(data[f"optimizer/{k}"]) < 0:
                    raise ValueError(f"{filepath}: corrupted model file (optimizer/{k} is "
                                     f"{int(data[f'optimizer/{k}'])}, expected an int >= 0)")
            opt.iterations = int(data["optimizer/iterations"])
            opt.epoch = int(data["optimizer/epoch"])
    return model


def model_from_json(json_string):
    """A new model (fresh weights) from ``model.to_json()`` text (Keras's
    ``keras.models.model_from_json``); only fastnn's own layer classes are built."""
    import json
    if not isinstance(json_string, (str, bytes)):
        raise TypeError(f"json_string: expected the text of model.to_json(), got {type(json_string).__name__}")
    try:
        d = json.loads(json_string)
    except ValueError as e:
        raise ValueError(f"json_string: not valid JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("class_name") not in _CLASSES:
        raise ValueError("json_string: not a fastnn model description (expected the text of model.to_json())")
    return _CLASSES[d["class_name"]].from_config(d["config"])
