"""The order in which ``fit`` visits the rows of in-memory arrays: a function of (key, epoch).

Epoch ``e`` of a fit whose shuffle key is ``k`` visits the rows in the order
``permutation(k, e)``, independent of the epochs before it. So a fit started at
``initial_epoch=e`` (after ``load_model``, or by ``BackupAndRestore`` after a crash)
draws exactly the batches an uninterrupted fit draws in epoch ``e``: no generator state
needs carrying over, only the key.

The key is one draw from the generator ``fit`` is given: ``default_rng(seed)`` for an
int ``seed``, fastnn's global generator for ``seed=None`` (``fastnn.set_random_seed``
makes that reproducible too), or a ``numpy.random.Generator`` used as given. The data
adapters (``fastnn.data.ArrayAdapter``) use the same two functions, so they draw fit's
batches.

>>> import numpy as np
>>> k = key(np.random.default_rng(0))
>>> p = np.arange(6); permute(p, k, 3); q = np.arange(6); permute(q, k, 3)
>>> bool((p == q).all()), sorted(p.tolist()) == list(range(6))
(True, True)
"""
from __future__ import annotations

import numpy as np

KEY_BOUND = 2**63


def key(rng):
    """The shuffle key of a fit: one draw from ``rng`` (a ``numpy.random.Generator``)."""
    return int(rng.integers(0, KEY_BOUND))


def permute(perm, key, epoch):
    """Set ``perm`` (an int array of length n, overwritten in place) to epoch ``epoch``'s order."""
    perm[...] = np.arange(perm.shape[0])
    np.random.default_rng([int(key), int(epoch)]).shuffle(perm)
