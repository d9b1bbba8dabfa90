"""The model file: one ``.npz`` file holding the architecture and compile settings
as JSON text, every weight, and the optimizer state.

Loading uses ``np.load(allow_pickle=False)`` and rebuilds only fastnn's own layer,
optimizer, loss and schedule classes by name: loading a file never runs code.
Writes go to a temporary file in the same folder, then ``os.replace``: a crash
never leaves a half-written model behind.

>>> import fastnn, tempfile, os, numpy as np
>>> from fastnn.layers import Dense
>>> m = fastnn.Sequential([Dense(2, input_dim=3)]); m.compile("sgd", "mse")
>>> path = os.path.join(tempfile.mkdtemp(), "m.npz"); m.save(path)
>>> bool(np.array_equal(fastnn.load_model(path).get_weights()[0], m.get_weights()[0]))
True

This module writes and reads the file and fills a model's weights; it knows the model only
through its interface (``get_config``, ``layers``, ``optimizer``, ``_saved_as``) and never
imports the graph, so ``graph.Model.save`` calls it through a plain module-level import.
Building a model from a file needs the graph classes: that is ``fastnn.io.load_model``, one
level up (io imports graph, never the reverse).
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from . import losses as _losses
from . import optimizers as _optimizers
from . import regularizers as _regularizers

FORMAT = "fastnn-model"
VERSION = 1


def _arrays(model, include_optimizer):
    model._ensure_placed()
    if not model.built:
        raise ValueError("save: the model is not built yet (give an input shape, or fit it first)")
    compile_cfg = None
    if model.compiled:
        compile_cfg = {"optimizer": _optimizers.serialize(model.optimizer),
                       "loss": _losses.serialize(model.loss), "metrics": list(model._metric_names),
                       "regularizer": _regularizers.serialize(model.regularizer)}
    cfg = {"format": FORMAT, "version": VERSION,
           "class_name": model._saved_as,
           "config": model.get_config(), "compile": compile_cfg}
    arrays = {"__config__": np.array(json.dumps(cfg))}
    for i, layer in enumerate(model.layers):
        for s in layer.specs:
            arrays[f"layer{i}/{s.name}"] = np.asarray(layer.vars[s.name])
        for k, v in layer._extra_state().items():
            arrays[f"layer{i}/state/{k}"] = np.asarray(v)
    if include_optimizer and model.compiled:
        opt = model.optimizer
        for slot, a in opt.state.items():
            arrays[f"optimizer/{slot}"] = a
        arrays["optimizer/iterations"] = np.array(opt.iterations, dtype=np.int64)
        arrays["optimizer/epoch"] = np.array(opt.epoch, dtype=np.int64)
    return arrays


def save_model(model, filepath, include_optimizer=True):
    """Write ``model`` to ``filepath`` atomically (temporary file + os.replace)."""
    filepath = os.fspath(filepath)
    arrays = _arrays(model, include_optimizer)
    folder = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fastnn-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # the data is on disk before the rename makes it the file
        os.replace(tmp, filepath)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(filepath):
    """(config, arrays) of a model file. Anything that is not a well-formed fastnn file --
    truncated, corrupted, another format, an entry needing pickle -- is a ValueError naming
    the file; nothing in it is ever executed (allow_pickle=False, JSON config)."""
    filepath = os.fspath(filepath)
    try:
        f = np.load(filepath, allow_pickle=False)
    except OSError:
        raise  # missing file, a folder, no permission: the OS error says it
    except Exception as e:  # BadZipFile, EOFError, pickled data, a bad .npy header, ...
        raise ValueError(f"{filepath}: not a readable fastnn model file ({type(e).__name__}: {e})") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{filepath}: not a fastnn model file (a single array, not an .npz archive)")
    try:
        with f:
            data = {k: f[k] for k in f.files}
    except Exception as e:  # a bad CRC, a truncated member, an object array, ...
        raise ValueError(f"{filepath}: corrupted or unsafe model file ({type(e).__name__}: {e})") from None
    if "__config__" not in data:
        raise ValueError(f"{filepath}: not a fastnn model file (no __config__ entry)")
    text = data.pop("__config__")
    if text.dtype.kind != "U" or text.ndim != 0:
        raise ValueError(f"{filepath}: not a fastnn model file (__config__ is {text.dtype} {text.shape}, not text)")
    try:
        cfg = json.loads(str(text))
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{filepath}: corrupted model file (its config is not valid JSON: {e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f"{filepath}: not a fastnn model file (format {got!r})")
    version = cfg.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{filepath}: unknown model file version {version!r} (this fastnn reads 1 to {VERSION})")
    if version > VERSION:
        raise ValueError(f"{filepath}: written by a newer fastnn (format version {version}; "
                         f"this fastnn reads up to {VERSION})")
    for k, v in data.items():
        if v.dtype.kind not in "fiub":
            raise ValueError(f"{filepath}: entry {k} has dtype {v.dtype}, expected numbers")
    return cfg, data


def _set_layer_arrays(model, data, filepath):
    for i, layer in enumerate(model.layers):
        for s in layer.specs:
            key = f"layer{i}/{s.name}"
            if key not in data:
                raise ValueError(f"{filepath}: missing weights {key}")
            if data[key].shape != s.shape:
                raise ValueError(f"{filepath}: {key} has shape {data[key].shape}, the model expects {s.shape}")
            if data[key].dtype.kind != "f":
                raise ValueError(f"{filepath}: {key} has dtype {data[key].dtype}, expected a float array")
    for i, layer in enumerate(model.layers):
        for s in layer.specs:
            layer.vars[s.name][...] = data[f"layer{i}/{s.name}"]
        prefix = f"layer{i}/state/"
        state = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
        if state:
            layer._set_extra_state(state)


def load_weights(model, filepath):
    """Load the weights of a file written by save / save_weights into ``model`` (same architecture)."""
    _, data = _read(filepath)
    model._ensure_placed()
    _set_layer_arrays(model, data, os.fspath(filepath))
