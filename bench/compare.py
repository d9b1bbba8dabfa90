"""Side-by-side comparison of fastnn with NumPy, PyTorch and scikit-learn.

    python bench/compare.py                 # every section
    python bench/compare.py eltwise gemm    # chosen sections
    python bench/compare.py --quick         # fewer sizes and rounds

Each section lives in bench/compare_<section>.py and exposes
``run(quick: bool, threads: int) -> None``, printing its own table of medians
and ratios (contenders measured in alternation, with pauses; see common.py).
PyTorch is optional: without it, its columns are skipped with a message.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

SECTIONS = ["stream", "eltwise", "gemm", "norm", "loss", "optim", "train"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sections", nargs="*", help=f"any of {', '.join(SECTIONS)} (default: all present)")
    p.add_argument("--quick", action="store_true", help="fewer sizes and rounds")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    import fastnn
    common.set_threads(a.threads)
    print(f"fastnn {fastnn.__version__} isa={fastnn.cpu_info()['isa']} threads={a.threads}")
    if not common.have_torch():
        print("PyTorch not installed: its columns are skipped (pip install torch==2.13.0)")
    for name in a.sections or SECTIONS:
        path = HERE / f"compare_{name}.py"
        if not path.exists():
            if a.sections:
                print(f"no section {name!r} (bench/compare_{name}.py missing)")
            continue
        importlib.import_module(f"compare_{name}").run(quick=a.quick, threads=a.threads)


if __name__ == "__main__":
    main()
