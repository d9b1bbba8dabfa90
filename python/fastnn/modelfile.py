"""Saving and loading models: one ``.npz`` file holding the architecture and compile settings
as JSON text, every weight, and the optimizer state.

Loading never unpickles (``fastnn._archive`` refuses object dtypes from the .npy headers)
and rebuilds only fastnn's own layer, optimizer, loss and schedule classes by name: loading
a file never runs code. It checks the config against the entries' headers before allocating
anything the size of a weight, decompresses only the entries the model uses, and at most
``max_bytes`` of them.
Writes go to a temporary file in the target's folder, then ``os.replace``: a crash
never leaves a half-written model behind (``fastnn._safe_files``).

A round trip through ``Model.save`` and ``fastnn.load_model``: see ``fastnn.io``.

This module writes and reads the file and fills a model's weights; it knows the model only
through its interface (``get_config``, ``layers``, ``optimizer``, ``_saved_as``) and never
imports the graph, so ``graph.Model.save`` calls it through a plain module-level import.
Building a model from a file needs the graph classes: that is ``fastnn.io.load_model``, one
level up (io imports graph, never the reverse).
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from . import losses as _losses
from . import optimizers as _optimizers
from . import regularizers as _regularizers
from . import _archive, _atomic, _metric_files, _safe_files

FORMAT = "fastnn-model"
VERSION = 1
# compile's options about how steps run (fastnn._execution); absent from older files
EXECUTION_KEYS = ("steps_per_execution", "run_eagerly", "jit_compile", "auto_scale_loss")


def _arrays(model, include_optimizer):
    model._ensure_placed()
    if not model.built:
        raise ValueError("save: the model is not built yet (give an input shape, or fit it first)")
    compile_cfg = None
    if model.compiled:
        compile_cfg = {"optimizer": _optimizers.serialize(model.optimizer),
                       "loss": _losses.serialize(model.loss),
                       "metrics": _metric_files.serialize_specs(model._metric_names, "metrics"),
                       "regularizer": _regularizers.serialize(model.regularizer)}
        compile_cfg.update({k: getattr(model, k) for k in EXECUTION_KEYS})
        if model._weighted_metric_names:
            compile_cfg["weighted_metrics"] = _metric_files.serialize_specs(model._weighted_metric_names,
                                                                             "weighted_metrics")
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


_FOREIGN = {".h5": "HDF5 (Keras 2)", ".hdf5": "HDF5 (Keras 2)", ".keras": "Keras 3's .keras zip",
            ".onnx": "ONNX", ".pb": "TensorFlow SavedModel", ".pt": "PyTorch", ".pth": "PyTorch",
            ".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib", ".safetensors": "safetensors"}


def check_filename(filepath):
    """Refuse a name that promises another format: fastnn writes only its own .npz files."""
    name = os.fspath(filepath)
    for ext, what in _FOREIGN.items():
        if name.lower().endswith(ext):
            hint = " or model.export(path, format='onnx')" if ext != ".onnx" else \
                "; for ONNX call model.export(path, format='onnx')"
            raise ValueError(f"filepath: {name!r} names a {what} file, but fastnn saves its own .npz format "
                             f"(architecture, weights and optimizer state); use a name ending in .npz{hint}")
    return name


def save_model(model, filepath, include_optimizer=True):
    """Write ``model`` to ``filepath`` atomically (see ``fastnn._safe_files``: temporary file,
    fsync, rename; through a symlink to its target; only over a regular file; umask and an
    existing file's mode kept; stranded temporaries of killed writers cleaned). A name
    ending in another format's extension (.h5, .keras, .onnx, ...) is refused. What is
    written is a copy taken between two training steps: a fit in another thread never tears it."""
    filepath = check_filename(filepath)
    with _atomic.step_lock(model):
        arrays = {k: np.array(v) for k, v in _arrays(model, include_optimizer).items()}
    _safe_files.atomic_write(filepath, lambda f: np.savez(f, **arrays))


MAX_CONFIG_BYTES = 64 * 2**20  # the JSON config entry (UTF-32 text in the file)


def _read_config(ar, budget):
    """The checked JSON config of an open archive. Anything that is not a well-formed fastnn
    file -- truncated, corrupted, another format, an entry needing pickle -- is a ValueError
    naming the file; nothing in it is ever executed (no pickle, JSON config)."""
    path = ar.path
    if "__config__" not in ar:
        raise ValueError(f"{path}: not a fastnn model file (no __config__ entry)")
    e = ar.entry("__config__")
    if e.dtype.kind != "U" or e.shape != ():
        raise ValueError(f"{path}: not a fastnn model file (__config__ is {e.dtype} {e.shape}, not text)")
    if e.nbytes > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: corrupted or unsafe model file (a config of {e.nbytes:,} bytes; "
                         f"the limit is fastnn.io.MAX_CONFIG_BYTES = {MAX_CONFIG_BYTES:,})")
    text = ar.read("__config__", budget)
    try:
        cfg = json.loads(str(text))
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{path}: corrupted model file (its config is not valid JSON: {e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise ValueError(f"{path}: not a fastnn model file (format {got!r})")
    version = cfg.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{path}: unknown model file version {version!r} (this fastnn reads 1 to {VERSION})")
    if version > VERSION:
        raise ValueError(f"{path}: written by a newer fastnn (format version {version}; "
                         f"this fastnn reads up to {VERSION})")
    return cfg


def _expect(ar, key, shape, kinds, what="weights"):
    """Check member ``key``'s header (not its data) against the shape and dtype kinds wanted."""
    if key not in ar:
        raise ValueError(f"{ar.path}: missing {what} {key}")
    e = ar.entry(key)
    if e.shape != tuple(shape):
        raise ValueError(f"{ar.path}: {key} has shape {e.shape}, the model expects {tuple(shape)}")
    if e.dtype.kind not in kinds:
        want = "a float array" if kinds == "f" else "an integer"
        raise ValueError(f"{ar.path}: {key} has dtype {e.dtype}, expected {want}")
    return key


def _layer_keys(ar, i, layer):
    keys = [_expect(ar, f"layer{i}/{s.name}", s.shape, "f") for s in layer.specs]
    for name, v in layer._extra_state().items():
        k = f"layer{i}/state/{name}"
        if k in ar:
            v = np.asarray(v)
            keys.append(_expect(ar, k, v.shape, "iu" if v.dtype.kind in "iu" else "f", "state"))
    return keys


def _model_keys(config, ar):
    """(entries to read, arena size) from the config alone: layers are made and built (which
    declares their variables, allocating none of them) one at a time, each checked against
    the file's headers before the next; a row wider than the file's data could describe is
    refused before a layer is built for it."""
    from .layers import _shape_tuple, deserialize
    shape = config.get("input_shape")
    if shape is None and config.get("graph") is None:
        return [], 0  # an unbuilt Sequential: no weights are read
    dtype = np.dtype(config["dtype"])
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    if config.get("graph") is not None:
        return _graph_keys(config, ar, dtype)
    s, keys, size = _shape_tuple(shape, "input_shape"), [], 0
    cap = max(ar.bound_bytes(), 1 << 20)
    for i, d in enumerate(config["layers"]):
        if math.prod(s) * dtype.itemsize > cap:
            raise ValueError(f"{ar.path}: layer {i} takes rows of shape {s}, wider than all the data "
                             f"in the file could describe ({cap:,} bytes)")
        layer = deserialize(d)
        layer.build(s, dtype)
        s = layer.output_shape
        keys += _layer_keys(ar, i, layer)
        size += sum(sp.size for sp in layer.specs if sp.trainable)
    return keys, size


def _graph_keys(config, ar, dtype):
    """_model_keys of a functional graph: each layer built at its first node, from the shapes
    of the values it takes (inputs first, then one value per node)."""
    from .layers import _shape_tuple, deserialize
    graph, cap = config["graph"], max(ar.bound_bytes(), 1 << 20)
    shapes = [_shape_tuple(i["shape"], "input_shape") for i in graph["inputs"]]
    for s in shapes:
        if math.prod(s) * dtype.itemsize > cap:
            raise ValueError(f"{ar.path}: an input takes rows of shape {s}, wider than all the data in the "
                             f"file could describe ({cap:,} bytes)")
    built, keys, size = {}, [], 0
    for li, inbound in graph["nodes"]:
        li = int(li)
        if not 0 <= li <= len(built) or li >= len(config["layers"]) or not inbound or \
                any(not 0 <= int(v) < len(shapes) for v in inbound):
            raise ValueError(f"{ar.path}: graph node {len(shapes) - len(graph['inputs'])} refers to a missing "
                             f"layer or value "
                             f"(layers are listed in the order of their first node)")
        ins = [shapes[int(v)] for v in inbound]
        for s in ins:
            if math.prod(s) * dtype.itemsize > cap:
                raise ValueError(f"{ar.path}: layer {li} takes rows of shape {s}, wider than all the data "
                                 f"in the file could describe ({cap:,} bytes)")
        layer = built.get(li)
        if layer is None:
            layer = built[li] = deserialize(config["layers"][li])
        layer.build(ins if getattr(layer, "_multi_input", False) else ins[0], dtype)
        shapes.append(tuple(layer.output_shape))
        if len(keys) < len(built):  # first node of this layer: its entries
            keys.append(_layer_keys(ar, li, layer))
            size += sum(sp.size for sp in layer.specs if sp.trainable)
    if len(built) != len(config["layers"]):
        raise ValueError(f"{ar.path}: the graph uses {len(built)} of its {len(config['layers'])} layers")
    return [k for ks in keys for k in ks], size


def _optimizer_keys(compile_cfg, size, ar):
    if "optimizer/iterations" not in ar:
        return []
    opt = _optimizers.get(compile_cfg["optimizer"])
    keys = [_expect(ar, f"optimizer/{slot}", (size,), "f", "optimizer state") for slot in opt.slots]
    return keys + [_expect(ar, f"optimizer/{k}", (), "iu", "optimizer state") for k in ("iterations", "epoch")]


def _read_entries(ar, keys, budget):
    """The arrays of ``keys``: their total is charged to the budget before any is allocated."""
    budget.take(sum(ar.entry(k).nbytes for k in keys), f"{len(keys)} weight entries")
    return {k: ar.read(k) for k in keys}


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


def load_weights(model, filepath, max_bytes=None):
    """Load the weights of a file written by save / save_weights into ``model`` (same
    architecture); the same checks and ``max_bytes`` limit as ``load_model``."""
    filepath = os.fspath(filepath)
    budget = _archive.Budget(max_bytes, filepath)
    model._ensure_placed()
    with _archive.Archive(filepath) as ar:
        _read_config(ar, budget)
        keys = [k for i, layer in enumerate(model.layers) for k in _layer_keys(ar, i, layer)]
        data = _read_entries(ar, keys, budget)
    with _atomic.step_lock(model):  # between two steps of a fit in another thread
        _set_layer_arrays(model, data, filepath)


# ------------------------------------------------------------ JSON and export
EXPORTERS = {}  # format name -> function(model, filepath, **kwargs); fastnn.export adds "onnx"


def to_json(model, **kwargs):
    """The architecture as JSON text (Keras's ``model.to_json()``; no weights):
    ``fastnn.models.model_from_json`` builds it back."""
    return json.dumps({"class_name": model._saved_as, "config": model.get_config(), "format": FORMAT},
                      **kwargs)


def export_model(model, filepath, format="onnx", **kwargs):
    """Keras 3's ``model.export(filepath, format=...)``: ``"onnx"`` (needs the onnx package)."""
    if not EXPORTERS:
        from importlib import import_module
        import_module("fastnn.export")  # registers its formats (import direction: export sits above)
    fn = EXPORTERS.get(format)
    if fn is None:
        raise ValueError(f"format: expected one of {', '.join(map(repr, EXPORTERS))}, got {format!r}")
    return fn(model, filepath, **kwargs)
