"""The public models module, as in Keras (``fastnn.models.load_model``): the graph classes
(``fastnn.graph``) and the loader (``fastnn.io``), re-exported so that existing imports keep
working.

>>> import fastnn
>>> fastnn.models.Sequential is fastnn.Sequential
True
"""
from __future__ import annotations

from .graph import Model, Sequential, clone_model
from .io import load_model, model_from_json
from .trainer import NotCompiledError

__all__ = ["Model", "Sequential", "clone_model", "load_model", "model_from_json", "NotCompiledError"]
