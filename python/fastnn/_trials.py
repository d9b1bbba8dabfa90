"""How :func:`fastnn.tuning.random_search` runs its trials: in this process or on an
executor (:func:`process_executor`, re-exported by ``fastnn.tuning``)."""
from __future__ import annotations

import concurrent.futures as cf
import inspect
import multiprocessing
import time

from .lr_range import history_dict as _history_dict


def _accepts_seed(fn) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return "seed" in sig.parameters or any(
        p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _run_trial(build_fn, params, seed, x, y, validation_data, epochs, batch_size,
               fit_kwargs, monitor):
    """Build and train one model; runs in the caller's process or a worker."""
    t0 = time.perf_counter()
    params = dict(params)
    fit_epochs = params.get("epochs", epochs)
    fit_batch = params.get("batch_size", batch_size)
    model = build_fn(params, seed=seed) if _accepts_seed(build_fn) else build_fn(params)
    kw = dict(fit_kwargs or {})
    if validation_data is not None:
        kw["validation_data"] = validation_data
    hist = _history_dict(model.fit(x, y, epochs=fit_epochs, batch_size=fit_batch,
                                   verbose=0, **kw))
    hist = {k: [float(v) for v in vals] for k, vals in hist.items()}
    return hist, time.perf_counter() - t0


def process_executor(max_workers: int = 2, threads_per_worker: int = 1) -> cf.ProcessPoolExecutor:
    """A local process pool for :func:`random_search`, started with ``spawn``
    (safe with OpenMP and threads, unlike ``fork``), each worker limited to
    ``threads_per_worker`` fastnn threads so workers do not oversubscribe cores.

    >>> from fastnn.tuning import process_executor
    >>> with process_executor(2) as ex:              # doctest: +SKIP
    ...     trials = random_search(build_fn, space, 8, x, y, val, executor=ex)
    """
    for name, v in (("max_workers", max_workers), ("threads_per_worker", threads_per_worker)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
        if v < 1:
            raise ValueError(f"{name}: expected >= 1, got {v}")
    return cf.ProcessPoolExecutor(max_workers=max_workers,
                                  mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_worker_init, initargs=(threads_per_worker,))


def _worker_init(threads):
    try:
        import fastnn
        fastnn.set_num_threads(threads)
    except Exception:  # a build_fn that does not use fastnn still runs
        pass


def run_all(build_fn, plans, args, executor, verbose):
    """{trial index: (history, seconds) or the exception it raised}, in this process or on ``executor``."""
    results = {}
    if executor is None:
        for i, params, s in plans:
            try:
                results[i] = _run_trial(build_fn, params, s, *args)
            except Exception as e:  # noqa: BLE001 — a failed trial is data
                results[i] = e
            _report(verbose, i, len(plans), params, results[i])
        return results
    futures = {executor.submit(_run_trial, build_fn, params, s, *args): i for i, params, s in plans}
    for fut in cf.as_completed(futures):
        i = futures[fut]
        try:
            results[i] = fut.result()
        except Exception as e:  # noqa: BLE001
            results[i] = e
        _report(verbose, i, len(plans), plans[i][1], results[i])
    return results


def _report(verbose, i, n, params, r):
    if not verbose:
        return
    what = f"error {r}" if isinstance(r, Exception) else f"{r[1]:.1f}s"
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
    print(f"trial {i + 1}/{n} {params}: {what}", flush=True)
