"""The Keras-style lookup shared by losses, optimizers, initializers and
regularizers: an object from a name, a class, an instance or a serialized
``{"class_name": ..., "config": ...}`` dict."""
from __future__ import annotations


def resolve(identifier, *, kind, base, by_name, classes, expected, from_config=None, lower=False):
    """``kind`` names the argument in errors ("loss"); ``expected`` ends the
    TypeError ("a Loss"); ``from_config(cls, config)`` builds from a dict
    (default ``cls(**config)``); ``lower`` matches names case-insensitively."""
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower() if lower else identifier
        if key not in by_name:
            raise ValueError(f"{kind}: unknown {kind} {identifier!r}; known: {', '.join(by_name)}")
        return by_name[key]()
    if isinstance(identifier, type) and issubclass(identifier, base):
        return identifier()
    if isinstance(identifier, dict):
        cls = classes.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"{kind}: unknown class {identifier.get('class_name')!r}; "
                             f"known: {', '.join(classes)}")
        config = dict(identifier.get("config", {}))
        return from_config(cls, config) if from_config else cls(**config)
    raise TypeError(f"{kind}: expected a name ({', '.join(by_name)}) or {expected}, "
                    f"got {type(identifier).__name__}")
