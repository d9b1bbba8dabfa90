"""Compiled metrics in a model file, as Keras 3 keeps them: a name stays a plain string, a
metric object becomes ``{"class_name": ..., "config": m.get_config()}`` and is built back
on load from :data:`CLASSES`, fastnn's own metric classes, and nothing else (a file never
names code to run). A metric of another class (a user subclass) is refused when saving:
fastnn's ``load_model`` has no ``custom_objects`` to find it by.

>>> from fastnn import metrics
>>> entry = serialize_spec(metrics.AUC(num_thresholds=50), "metrics")
>>> entry["class_name"], entry["config"]["num_thresholds"]
('AUC', 50)
>>> deserialize_spec(entry, "metrics").get_config() == entry["config"]
True
"""
from __future__ import annotations

import inspect
import json

from . import metrics as _metrics

CLASSES = {c.__name__: c for c in (
    _metrics.BinaryAccuracy, _metrics.CategoricalAccuracy, _metrics.SparseCategoricalAccuracy,
    _metrics.MeanSquaredError, _metrics.MeanAbsoluteError, _metrics.RootMeanSquaredError,
    _metrics.MeanAbsolutePercentageError, _metrics.MeanSquaredLogarithmicError,
    _metrics.BinaryCrossentropy, _metrics.CategoricalCrossentropy, _metrics.SparseCategoricalCrossentropy,
    _metrics.KLDivergence, _metrics.Hinge, _metrics.SquaredHinge,
    _metrics.Precision, _metrics.Recall, _metrics.AUC, _metrics.TopKCategoricalAccuracy,
    _metrics.SparseTopKCategoricalAccuracy, _metrics.F1Score, _metrics.FBetaScore)}

_BYTES_PER_THRESHOLD = 64  # what an AUC's thresholds and confusion counts take, charged to max_bytes


def serialize_spec(m, what):
    """The file's entry for one metric of compile's ``what``: a name as is, a fastnn metric
    object as its class name and config; any other object refused (ValueError)."""
    if isinstance(m, str):
        return m
    cls = type(m)
    if CLASSES.get(cls.__name__) is not cls:
        raise ValueError(f"save: compile's {what} holds a metric of class {cls.__module__}.{cls.__qualname__} "
                         f"({getattr(m, 'name', m)!r}), which is not one of fastnn's metric classes "
                         f"({', '.join(CLASSES)}); a model file rebuilds only those (fastnn.load_model takes "
                         f"no custom_objects): compile with a fastnn metric or a name to save the model, "
                         f"or keep its weights with save_weights")
    config = m.get_config()
    try:
        json.dumps(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"save: compile's {what} holds {cls.__name__} {m.name!r} whose config {config!r} "
                         f"is not JSON ({e})") from None
    return {"class_name": cls.__name__, "config": config}


def serialize_specs(specs, what):
    """compile's ``what`` (a list, or a dict of lists per output) as the file keeps it."""
    if isinstance(specs, dict):
        return {k: None if v is None else [serialize_spec(m, f"{what}[{k!r}]") for m in v]
                for k, v in specs.items()}
    return [serialize_spec(m, what) for m in specs]


def _check_config(cls, config, where):
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"{where}: expected a config dict, got {type(config).__name__}")
    params = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - params)
    if unknown:
        raise ValueError(f"{where}: {cls.__name__} takes no {', '.join(map(repr, unknown))} "
                         f"(its arguments: {', '.join(sorted(params))})")
    if "name" in config and not isinstance(config["name"], (str, type(None))):
        raise ValueError(f"{where}: name: expected a string, got {type(config['name']).__name__}")


def deserialize_spec(entry, what, budget=None):
    """The metric (a name, or a new fastnn metric object) of one file entry; anything else
    -- an unknown class, a malformed config, arguments the class refuses -- is a ValueError
    naming the entry. ``budget`` (``fastnn._archive.Budget``) is charged for an AUC's thresholds."""
    if isinstance(entry, str):
        return entry
    where = f"compile's {what} entry {str(entry)[:200]}"
    if not isinstance(entry, dict) or set(entry) != {"class_name", "config"}:
        raise ValueError(f"{where}: expected a metric name or {{'class_name': ..., 'config': {{...}}}}")
    name = entry["class_name"]
    cls = CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{where}: unknown metric class {name!r}; known: {', '.join(CLASSES)}")
    config = entry["config"]
    _check_config(cls, config, where)
    n = config.get("num_thresholds")
    if budget is not None and cls is _metrics.AUC and config.get("thresholds") is None \
            and isinstance(n, int) and n > 0:
        budget.take(n * _BYTES_PER_THRESHOLD, f"AUC(num_thresholds={n})")
    try:
        return cls.from_config(dict(config))
    except (TypeError, ValueError, OverflowError, RecursionError) as e:
        raise ValueError(f"{where}: {cls.__name__} refuses its config ({type(e).__name__}: {e})") from None


def deserialize_specs(entries, what, budget=None):
    """compile's ``what`` from the file: None, a list, or a dict of lists per output."""
    if entries is None:
        return None
    if isinstance(entries, dict):
        return {k: None if v is None else _entry_list(v, f"{what}[{k!r}]", budget) for k, v in entries.items()}
    return _entry_list(entries, what, budget)


def _entry_list(entries, what, budget):
    if not isinstance(entries, list):
        raise ValueError(f"compile's {what}: expected a list of metrics, got {type(entries).__name__}")
    return [deserialize_spec(e, what, budget) for e in entries]
