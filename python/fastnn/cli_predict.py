"""``fastnn predict MODEL INPUT [-o OUT]``: a saved model applied to a file of raw inputs.

INPUT: ``.npy``; ``.npz`` (the array named by ``--key``, else ``x``, else the only
array); ``.csv`` (numbers, comma-separated; a header line of names is skipped;
``--columns`` picks columns by name); ``.parquet`` (``--columns``, default every
numeric column); IDX (``*-ubyte``, ``.idx``, gzipped or not: Fashion-MNIST's format).
The model holds its own preprocessing (``fastnn train`` saves Rescaling and the fitted
Normalization inside it), so raw pixels go in as they are. Rows whose size matches
the model's input but not its shape (flattened images, or images for a flat input)
are reshaped, with a note on stderr.

OUT (default ``<INPUT name>.predictions.npz``): ``.npz`` with ``predictions`` (the
model's outputs) and ``classes`` (argmax, or output > 0.5 for one unit), ``.npy``
(the outputs) or ``.csv`` (one row per sample).
"""
from __future__ import annotations

import os
import sys

import numpy as np

_IDX_SUFFIXES = ("-ubyte", "-ubyte.gz", ".idx", ".idx.gz", ".idx1", ".idx3")


def add_parser(sub):
    p = sub.add_parser("predict", help="apply a saved model to a file of inputs and write the predictions",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("model", help="a model saved by model.save / fastnn train (.npz)")
    p.add_argument("input", help="inputs: .npy, .npz, .csv, .parquet or IDX (.gz too)")
    p.add_argument("-o", "--output", default=None,
                   help="where to write (.npz, .npy or .csv; default <input>.predictions.npz)")
    p.add_argument("--key", default=None, help="the array of an .npz input (default x, or its only array)")
    p.add_argument("--columns", default=None, help="comma-separated input columns of a .csv / .parquet")
    p.add_argument("--batch-size", type=int, default=1024)
    return p


def _stem(path):
    name = os.path.basename(path)
    for ext in (".gz", ".npy", ".npz", ".csv", ".parquet", ".idx"):
        if name.lower().endswith(ext):
            name = name[:-len(ext)]
    return os.path.join(os.path.dirname(path), name)


def default_output(input_path):
    return _stem(input_path) + ".predictions.npz"


def _read_npz(path, key):
    """The array ``key`` of an .npz, read as model files are (``fastnn._archive``: headers
    checked against the zip's records before anything the size of the data is allocated)."""
    from . import _archive
    with _archive.Archive(path) as z:
        names = list(z.members)
        if key is None:
            key = "x" if "x" in names else (names[0] if len(names) == 1 else None)
        if key is None or key not in names:
            raise ValueError(f"input: {path} holds {', '.join(names) or 'no arrays'}; name the inputs with --key")
        return z.read(key, _archive.Budget(None, path))


def _read_csv(path, columns):
    with open(path, encoding="utf-8") as f:
        first = f.readline().strip()
    cells = [c.strip() for c in first.split(",")]
    try:
        [float(c) for c in cells]
        header = None
    except ValueError:
        header = cells
    a = np.loadtxt(path, delimiter=",", skiprows=1 if header else 0, ndmin=2)
    if columns:
        if header is None:
            raise ValueError(f"--columns: {path} has no header line naming its columns")
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f"--columns: {path} has no column {missing[0]!r}; it has {', '.join(header)}")
        a = a[:, [header.index(c) for c in columns]]
    return a


def _read_parquet(path, columns):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError("input: reading .parquet needs pyarrow (pip install fastnn[data])") from None
    import pyarrow.types as pt
    schema = pq.read_schema(path)
    numeric = [f.name for f in schema if pt.is_integer(f.type) or pt.is_floating(f.type) or pt.is_boolean(f.type)]
    for c in columns or ():
        if c not in schema.names:
            raise ValueError(f"--columns: {path} has no column {c!r}; it has {', '.join(schema.names)}")
        if c not in numeric:
            raise ValueError(f"--columns: column {c!r} of {path} has type {schema.field(c).type}, not numbers")
    names = columns or numeric
    if not names:
        raise ValueError(f"input: {path} has no numeric column")
    table = pq.read_table(path, columns=names)
    return np.column_stack([table.column(n).to_numpy(zero_copy_only=False) for n in names])


def read_inputs(path, key=None, columns=None):
    """The input array of a file, chosen by its name (see the module doc)."""
    low = path.lower()
    cols = [c.strip() for c in columns.split(",")] if columns else None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input: no file {path}")
    try:
        x = _read_any(path, low, key, cols)
    except (ValueError, OSError) as e:  # NumPy's and pyarrow's parse errors do not name the file
        if str(path) in str(e):
            raise
        raise ValueError(f"input: {path}: {e}") from None
    if np.ndim(x) >= 1 and len(x) == 0:
        raise ValueError(f"input: {path} holds no rows")
    return x


def _read_any(path, low, key, cols):
    if low.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if low.endswith(".npz"):
        return _read_npz(path, key)
    if low.endswith(".csv") or low.endswith(".csv.gz"):
        return _read_csv(path, cols)
    if low.endswith(".parquet"):
        return _read_parquet(path, cols)
    if any(low.endswith(s) for s in _IDX_SUFFIXES) or low.endswith(".gz"):
        from .datasets import read_idx
        return read_idx(path)
    raise ValueError(f"input: {path}: unknown kind; expected .npy, .npz, .csv, .parquet or an IDX file")


def fit_to_model(x, model):
    """x reshaped to the model's input shape when only the layout differs (a note on stderr)."""
    want = tuple(model.input_shape[1:])
    if x.ndim >= 1 and tuple(x.shape[1:]) != want and x.ndim >= 2 and \
            int(np.prod(x.shape[1:])) == int(np.prod(want)):
        print(f"fastnn predict: note: inputs of shape {x.shape} reshaped to (n, {', '.join(map(str, want))})",
              file=sys.stderr)
        return x.reshape((x.shape[0],) + want)
    return x


def write_outputs(path, pred):
    """Write the predictions atomically (``fastnn._safe_files``): a failed write leaves the
    file that was there intact."""
    from . import _safe_files
    classes = (pred[:, 0] > 0.5).astype(np.int64) if pred.shape[-1] == 1 else pred.argmax(-1)
    low = path.lower()
    if low.endswith(".npy"):
        write = lambda f: np.save(f, pred)  # noqa: E731
    elif low.endswith(".csv"):
        write = lambda f: np.savetxt(f, pred.reshape(len(pred), -1), delimiter=",", fmt="%.9g")  # noqa: E731
    elif low.endswith(".npz"):
        write = lambda f: np.savez(f, predictions=pred, classes=classes)  # noqa: E731
    else:
        raise ValueError(f"--output: {path}: expected a name ending in .npz, .npy or .csv")
    _safe_files.atomic_write(path, write)
    return classes


def run(args):
    from .io import load_model
    out = args.output or default_output(args.input)
    low = out.lower()
    if not (low.endswith(".npz") or low.endswith(".npy") or low.endswith(".csv")):
        raise ValueError(f"--output: {out}: expected a name ending in .npz, .npy or .csv")
    model = load_model(args.model, compile=False)
    x = fit_to_model(read_inputs(args.input, args.key, args.columns), model)
    pred = model.predict(x, batch_size=args.batch_size)
    write_outputs(out, pred)
    print(f"wrote predictions for {len(pred)} samples to {out}")
    return 0
