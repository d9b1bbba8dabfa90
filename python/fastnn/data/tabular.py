"""Columns chosen by name: pandas DataFrames, pyarrow Tables and RecordBatches.

``columns_to_arrays(table, features, label, sample_weight)`` -> ``(x, y, sw)``: x stacks
the feature columns (in the order given) as one 2-D array of their common dtype, as
``DataFrame.to_numpy()`` does; y and sw are 1-D. Missing, non-numeric or null-holding
columns are refused with the argument and the column named.
"""
from __future__ import annotations

import collections

import numpy as np


def is_pandas(obj):
    mod = type(obj).__module__
    return (mod == "pandas" or mod.startswith("pandas.")) and type(obj).__name__ in ("DataFrame", "Series")


def is_arrow(obj):
    return type(obj).__module__.startswith("pyarrow") and type(obj).__name__ in ("Table", "RecordBatch")


def column_names(table):
    if is_arrow(table):
        return list(table.schema.names)
    return list(table.columns)


def _is_number(dt):
    return (np.issubdtype(dt, np.number) or dt == np.bool_) and not np.issubdtype(dt, np.complexfloating)


def _pandas_values(col, what):
    """A pandas Series' values as a 1-D numeric NumPy array. NumPy dtypes as they are; the
    nullable and pyarrow-backed ones (Int64, Float64, boolean, float64[pyarrow], ...) as
    their NumPy twin when no value is missing; anything else (category, object, dates) refused."""
    dt = col.dtype
    np_dt = dt if isinstance(dt, np.dtype) else getattr(dt, "numpy_dtype", None)
    if np_dt is None or not _is_number(np_dt):
        hint = " (its integer codes: .cat.codes)" if str(dt) == "category" else ""
        raise TypeError(f"{what} has dtype {dt}; expected numbers (float, int or bool){hint}")
    if isinstance(dt, np.dtype):
        return col.to_numpy()
    nulls = int(col.isna().sum())
    if nulls:
        raise ValueError(f"{what} holds {nulls} null values")
    return col.to_numpy(dtype=np_dt)


def _column(table, name, what):
    """One column as a 1-D numeric NumPy array."""
    if is_arrow(table):
        import pyarrow as pa
        col = table.column(name)
        t = col.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise TypeError(f"{what}: column {name!r} has type {t}; expected numbers (float, int or bool)")
        if col.null_count:
            raise ValueError(f"{what}: column {name!r} holds {col.null_count} null values")
        return np.asarray(col.to_numpy())
    return _pandas_values(table[name], f"{what}: column {name!r}")


def _names(names, what):
    if isinstance(names, str):
        return [names]
    try:
        names = list(names)
    except TypeError:
        raise TypeError(f"{what}: expected a column name or a list of names, got {names!r}") from None
    if not names:
        raise ValueError(f"{what}: expected at least one column name, got an empty list")
    for c in names:
        if c is None or isinstance(c, (list, dict, set)):  # a tuple names a MultiIndex column
            raise TypeError(f"{what}: expected column names, got {c!r}")
    return names


def resolve_columns(available, features, label, sample_weight):
    """(feature names, label name or None, weight name or None), every one checked to exist;
    features default to every column but the label and the weight."""
    for name, what in ((label, "label"), (sample_weight, "sample_weight")):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{what}: expected a column name (str), got {name!r}")
    if features is None:
        features = [c for c in available if c not in (label, sample_weight)]
        if not features:
            raise ValueError("features: no columns left once the label and weight columns are removed")
    features = _names(features, "features")
    avail = set(available)
    chosen = [c for c in features + [label, sample_weight] if c is not None]
    counts = collections.Counter(available)
    twice = sorted({str(c) for c in chosen if counts[c] > 1})
    if twice:
        raise ValueError(f"x: the column name(s) {twice} appear more than once; rename the columns")
    for names, what in ((features, "features"), ([label], "label"), ([sample_weight], "sample_weight")):
        missing = [c for c in names if c is not None and c not in avail]
        if missing:
            raise KeyError(f"{what}: column(s) {missing} not found; available: {list(available)}")
    if label is not None and label in features:
        raise ValueError(f"label: column {label!r} is also one of the features")
    return features, label, sample_weight


def columns_to_arrays(table, features=None, label=None, sample_weight=None):
    features, label, sw = resolve_columns(column_names(table), features, label, sample_weight)
    cols = [_column(table, c, "features") for c in features]
    dtype = np.result_type(*cols)
    x = np.empty((cols[0].shape[0], len(cols)), dtype=dtype)
    for j, c in enumerate(cols):
        x[:, j] = c
    y = _column(table, label, "label") if label is not None else None
    w = _column(table, sw, "sample_weight") if sw is not None else None
    return x, y, w


def series_to_array(obj, what):
    """y or sample_weight given as a pandas Series / pyarrow array: its values."""
    if is_pandas(obj):
        if type(obj).__name__ == "DataFrame":
            if obj.shape[1] != 1:
                raise ValueError(f"{what}: expected one column, got a DataFrame of {obj.shape[1]}")
            obj = obj.iloc[:, 0]
        return _pandas_values(obj, what)
    if type(obj).__module__.startswith("pyarrow"):
        if getattr(obj, "null_count", 0):
            raise ValueError(f"{what}: holds {obj.null_count} null values")
        return np.asarray(obj.to_numpy())
    return obj


def frame_to_arrays(x, y=None, sample_weight=None, features=None):
    """(x, y, sample_weight) as NumPy arrays: x a DataFrame, Series or Arrow table (its
    ``features`` columns, default every column but the label and weight columns); y and
    sample_weight column names of x, Series, Arrow arrays or arrays. y / sample_weight
    that are Series go through ``series_to_array`` also when x is an array."""
    if not (is_pandas(x) or is_arrow(x)):
        return x, series_to_array(y, "y"), series_to_array(sample_weight, "sample_weight")
    if type(x).__name__ == "Series":
        x = x.to_frame()
    label = y if isinstance(y, str) else None
    weight = sample_weight if isinstance(sample_weight, str) else None
    xa, ya, wa = columns_to_arrays(x, features, label, weight)
    if label is None and y is not None:
        ya = series_to_array(y, "y")
    if weight is None and sample_weight is not None:
        wa = series_to_array(sample_weight, "sample_weight")
    return xa, ya, wa
