"""The split of the model code (issue 11): graph, arena, trainer, loss targets, import direction."""
import ast
import pathlib

import numpy as np
import pytest

import fastnn
from fastnn import losses
from fastnn.arena import ParameterArena
from fastnn.layers import Dense, Input
from fastnn.trainer import EpochIterator

PKG = pathlib.Path(fastnn.__file__).resolve().parent


def _imports(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            base = (node.module or "").split(".")[0]
            names.add(base) if base else names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("module, forbidden", [
    ("graph.py", {"monitor", "io", "models", "callbacks", "sanity", "gradcheck", "cli", "tuning"}),
    ("arena.py", {"graph", "trainer", "io", "models", "monitor"}),
    ("trainer.py", {"graph", "io", "models", "monitor"}),
    ("modelfile.py", {"graph", "io", "models", "trainer"}),
    ("layers/core.py", {"graph", "trainer", "arena", "models"}),
])
def test_modules_never_import_upward(module, forbidden):
    assert not (_imports(PKG / module) & forbidden)



@pytest.mark.parametrize("path", sorted((PKG / "ops").glob("*.py")), ids=lambda p: f"ops/{p.name}")
def test_ops_package_imports_only_the_core_and_itself(path):
    siblings = {p.stem for p in (PKG / "ops").glob("*.py")}
    assert _imports(path) <= {"_core"} | siblings, _imports(path)

def test_graph_does_not_name_sequential_in_the_base_class():
    src = (PKG / "graph.py").read_text()
    model_src = src[src.index("class Model:"):src.index("class Sequential(Model):")]
    assert "Sequential" not in model_src


def test_trainable_change_is_seen_at_the_next_step():
    m = fastnn.Sequential([Dense(4, activation="relu", input_dim=3), Dense(2)])
    m.compile("sgd", "mse")
    x, y = np.ones((8, 3), np.float32), np.zeros((8, 2), np.float32)
    frozen = m.layers[0].get_weights()

    class Freeze(fastnn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.model.layers[0].trainable = False
                frozen[:] = self.model.layers[0].get_weights()
    m.fit(x, y, batch_size=2, epochs=1, verbose=0, callbacks=[Freeze()], shuffle=False)
    for a, b in zip(frozen, m.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)  # steps 1..3 of the same epoch left it alone


def test_arena_version_changes_with_trainable_flags_and_layout():
    layers = [Dense(3, input_dim=2), Dense(1)]
    m = fastnn.Sequential(layers)
    a = m.arena
    assert isinstance(a, ParameterArena)
    a.layout()
    v = a.version
    a.layout()
    assert a.version == v  # unchanged: cached
    layers[1].trainable = False
    ranges, _, first = a.layout()
    assert a.version > v and ranges == [(0, 9)] and first == 0


def test_functional_model_keeps_explicit_nodes():
    x = Input(4)
    h = Dense(5)(x)
    out = Dense(2)(h)
    m = fastnn.Model(x, out)
    assert [n.inbound for n in m.nodes] == [(0,), (1,)]
    assert [n.layer for n in m.nodes] == m.layers


def test_epoch_iterator_shuffles_into_reused_buffers_and_covers_every_row():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10)
    it = EpochIterator(x, y, batch_size=4, shuffle=True, rng=np.random.default_rng(0))
    seen, bufs = [], set()
    for _, xb, yb in it:
        np.testing.assert_array_equal(xb[:, 0], 2 * yb)
        seen += yb.tolist()
        bufs.add(id(xb.base if xb.base is not None else xb))
    assert sorted(seen) == list(range(10)) and it.steps == 3


@pytest.mark.parametrize("loss, y, width, match", [
    (losses.SparseCategoricalCrossentropy(), np.array([0, 3]), 3, "labels out of range"),
    (losses.CategoricalCrossentropy(), np.array([0, 1]), 3, "one-hot rows"),
    (losses.BinaryCrossentropy(), np.array([[0.5], [2.0]]), 1, r"targets in \[0, 1\]"),
    (losses.MeanSquaredError(), np.ones((2, 2)), 3, r"shape \(2, 3\)"),
    (losses.MeanSquaredError(), np.ones(3), 3, "lengths differ"),
])
def test_loss_prepare_targets_rejects_by_name(loss, y, width, match):
    before = y.copy()
    with pytest.raises(ValueError, match=match):
        loss.prepare_targets(y, 2, (width,), np.float32, "y")
    np.testing.assert_array_equal(y, before)


def test_activation_stats_method_without_the_toolkit():
    src = (PKG / "graph.py").read_text()
    assert "monitor" not in _imports(PKG / "graph.py") and "import monitor" not in src
    m = fastnn.Sequential([Dense(3, activation="relu", input_dim=2)])
    s = m.activation_stats(np.ones((4, 2)))
    assert set(s[m.layers[0].name]) == {"mean", "std", "saturated", "dead", "zero"}


def test_models_module_reexports_the_public_names():
    import fastnn.models as fm
    assert fm.Model is fastnn.Model and fm.Sequential is fastnn.Sequential
    assert fm.load_model is fastnn.load_model and fm.clone_model is fastnn.clone_model


# --- size limits of the architecture (issue 11): functions <= 80 lines, modules <= 500 lines ----------
MAX_FUNCTION_LINES, MAX_MODULE_LINES = 80, 500
# Modules over the limit today (strict xfail: the day one fits, its test fails until the entry is removed).
# trainer.py: 515 lines since the dataint merge (issue 17); to be split by its owner.
_OVER_MODULE_LIMIT_TODAY = set()


def _sources():
    return sorted(p for p in PKG.rglob("*.py") if "_bundled" not in p.parts)


def _long_functions(path):
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                out.append(f"{node.name} ({n} lines)")
    return out


@pytest.mark.parametrize("path", [
    pytest.param(p, id=str(p.relative_to(PKG)),
                 marks=[pytest.mark.xfail(strict=True, reason="over the module limit today")]
                 if str(p.relative_to(PKG)) in _OVER_MODULE_LIMIT_TODAY else [])
    for p in _sources()])
def test_module_within_500_lines(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.relative_to(PKG)}: {n} lines"


def test_no_function_over_80_lines():
    long = {str(p.relative_to(PKG)): f for p in _sources() if (f := _long_functions(p))}
    assert not long, long


def test_size_limit_checker_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    p = tmp_path / "m.py"
    p.write_text(f"def f():\n{body}\n")
    assert _long_functions(p) == [f"f ({MAX_FUNCTION_LINES + 1} lines)"]
