import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest


import fastnn  # noqa: E402
from fastnn.cli import build_parser, main  # noqa: E402

# where the fastnn under test lives (the source tree in development, site-packages in CI)
PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


def test_info_prints_the_isa_and_threads(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "isa in use:" in out and "threads:" in out
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["isa"] in ("scalar", "avx2", "avx512")


def test_parser_defaults_are_the_notes_mlp():
    a = build_parser().parse_args(["train"])
    assert a.dataset == "bundled" and a.hidden == [256, 128] and a.activation == "relu"
    assert a.optimizer == "adam" and a.epochs >= 1


@pytest.mark.parametrize("argv", [["train", "--hidden", "12,x"], ["train", "--lr", "-1"],
                                  ["train", "--dropout", "1.5"], ["train", "--epochs", "0"],
                                  ["frobnicate"]])
def test_bad_options_exit_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_short_training_run_saves_a_model_that_loads(tmp_path, capsys):
    out = tmp_path / "model.npz"
    code = main(["train", "--epochs", "1", "--hidden", "32", "--quiet", "--output", str(out),
                 "--batchnorm", "--optimizer", "sgd", "--lr", "0.05", "--seed", "1"])
    assert code == 0
    text = capsys.readouterr().out
    acc = float(text.split("test accuracy:")[1].split()[0])
    assert 0.5 < acc <= 1.0  # one epoch of a small net on the bundled subset (chance: 0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # one file: no scaler beside it
    # the saved model takes raw uint8 images and reproduces the printed test accuracy
    from fastnn.datasets import load_default
    from fastnn.io import load_model
    model = load_model(str(out))
    norm = model.get_layer(index=2)
    assert type(norm).__name__ == "Normalization" and 0.2 < norm.mean.item() < 0.4  # pixels / 255
    _, (xt, yt) = load_default()
    assert float((model.predict_classes(xt) == yt).mean()) == pytest.approx(acc, abs=1e-4)


def test_missing_full_dataset_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--dataset", "fashion-mnist", "--data-path", str(tmp_path),
                 "--no-save", "--quiet"])
    assert code == 2
    assert "holds no Fashion-MNIST files" in capsys.readouterr().err


@pytest.mark.slow
def test_default_train_reaches_85_percent_offline(tmp_path):
    # accuracy only: speed is measured in bench/, not asserted here (the run took 70-160 s
    # on a loaded 2-core machine); the timeout only turns a hang into a failure
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR, FASTNN_DATA=str(tmp_path / "none"),
               XDG_CACHE_HOME=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-m", "fastnn.cli", "train", "--quiet",
                        "--output", str(tmp_path / "m.npz")], env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    acc = float(r.stdout.split("test accuracy:")[1].split()[0])
    assert acc >= 0.85, acc
    assert np.isfinite(acc)
