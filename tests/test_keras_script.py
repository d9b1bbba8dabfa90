"""A typical Keras MLP script (issue 16) that runs with fastnn after changing only its
import lines. The script below is written for Keras 3; the test runs it with fastnn's
imports and, when keras with the JAX backend is installed, with Keras's own imports, to
show that it is a real Keras script. Keras 3 saves only to ``.keras`` names and fastnn
only to ``.npz`` (it refuses ``.keras``: docs/PORTING_FROM_KERAS.md), so the paths are
command-line options, as such scripts have them."""
import os
import subprocess
import sys

import pytest
from helpers import fastnn_pythonpath

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = fastnn_pythonpath()

KERAS_IMPORTS = """\
import keras
from keras import layers
from keras.callbacks import EarlyStopping, ModelCheckpoint
from keras.utils import to_categorical
"""

FASTNN_IMPORTS = """\
import fastnn as keras
from fastnn import layers
from fastnn.callbacks import EarlyStopping, ModelCheckpoint
from fastnn.utils import to_categorical
"""

SCRIPT = '''\
"""Train a small MLP classifier on synthetic tabular data."""
import argparse

import numpy as np

{imports}

def make_data(n=1200, d=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 1.5
    y = rng.choice(k, size=n, p=[0.6, 0.3, 0.1])  # imbalanced classes
    x = (centers[y] + rng.normal(size=(n, d))).astype("float32")
    return x, y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="best.keras")
    parser.add_argument("--model-path", default="mlp.keras")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    keras.utils.set_random_seed(42)
    x, y = make_data()
    num_classes = 3
    x_train, y_train = x[:1000], to_categorical(y[:1000], num_classes)
    x_test, y_test = x[1000:], to_categorical(y[1000:], num_classes)

    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std

    model = keras.Sequential([
        keras.Input(shape=(x_train.shape[1],)),
        layers.Dense(64, activation="relu"),
        layers.BatchNormalization(),
        layers.Dropout(0.3),
        layers.Dense(32, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary()

    counts = np.bincount(y[:1000], minlength=num_classes)
    class_weight = {{i: float(len(y_train) / (num_classes * c)) for i, c in enumerate(counts)}}
    callbacks = [
        EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
        ModelCheckpoint(args.checkpoint, monitor="val_loss", save_best_only=True),
    ]
    history = model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.2,
                        class_weight=class_weight, callbacks=callbacks, verbose=2)

    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"epochs run: {{len(history.history['loss'])}}")
    print(f"test loss: {{loss:.4f}} test accuracy: {{acc:.4f}}")

    model.save(args.model_path)
    restored = keras.models.load_model(args.model_path)
    np.testing.assert_allclose(restored.predict(x_test, verbose=0), model.predict(x_test, verbose=0),
                               rtol=1e-5, atol=1e-6)
    best = keras.models.load_model(args.checkpoint)
    print(f"checkpoint accuracy: {{best.evaluate(x_test, y_test, verbose=0)[1]:.4f}}")
    print("restored model predicts the same")


if __name__ == "__main__":
    main()
'''


def _run(tmp_path, imports, ext, env):
    path = tmp_path / f"script_{ext}.py"
    path.write_text(SCRIPT.format(imports=imports))
    r = subprocess.run([sys.executable, str(path), "--checkpoint", str(tmp_path / f"best.{ext}"),
                        "--model-path", str(tmp_path / f"mlp.{ext}")], env=env, capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def _accuracy(out):
    return float(out.split("test accuracy:")[1].split()[0])


def test_only_the_import_lines_differ():
    a = SCRIPT.format(imports=KERAS_IMPORTS).splitlines()
    b = SCRIPT.format(imports=FASTNN_IMPORTS).splitlines()
    diff = [(x, y) for x, y in zip(a, b) if x != y]
    assert len(a) == len(b) and len(diff) == 4
    assert all(x.lstrip().startswith(("import ", "from ")) for pair in diff for x in pair)


def test_keras_mlp_script_runs_with_fastnn(tmp_path):
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    out = _run(tmp_path, FASTNN_IMPORTS, "npz", env)
    assert "restored model predicts the same" in out and _accuracy(out) > 0.85
    assert (tmp_path / "best.npz").exists() and (tmp_path / "mlp.npz").exists()


@pytest.mark.slow  # about a minute: JAX starts and compiles
def test_the_same_script_runs_with_keras(tmp_path):
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    env.pop("PYTHONPATH", None)
    probe = subprocess.run([sys.executable, "-c", "import keras"], env=env, capture_output=True, timeout=120)
    if probe.returncode != 0:
        pytest.skip("keras with the JAX backend is not installed")
    out = _run(tmp_path, KERAS_IMPORTS, "keras", env)
    assert "restored model predicts the same" in out and _accuracy(out) > 0.85
