"""Dtype policies, Keras's names: ``Policy("mixed_bfloat16")``, ``set_global_policy``.

A policy says in which dtype a layer computes and in which it keeps its
variables (weights, optimizer state):

==================  =============  ==============
name                compute_dtype  variable_dtype
==================  =============  ==============
``float32``         float32        float32
``float64``         float64        float64
``mixed_bfloat16``  bfloat16       float32
==================  =============  ==============

Under ``mixed_bfloat16`` the weights stay float32 (the master copy, updated by
the optimizer in float32); the GEMMs take bfloat16 operands with float32
accumulation (:func:`fastnn.ops.matmul_bf16`). NumPy has no bfloat16, so
values that are "stored in bfloat16" are float32 arrays holding bfloat16
values (:func:`fastnn.ops.bfloat16_round`). On CPUs without AVX512-BF16 the
same arithmetic runs through the float32 kernels (correct, not fast).

Refused, with a ``ValueError`` naming the valid policies: ``"bfloat16"`` and
``"float16"`` (fastnn keeps float32 master weights), ``"mixed_float16"`` (no
float16 kernels), and any other name. A policy argument that is neither a
string nor a :class:`Policy` raises :class:`PolicyTypeError`, both a
``ValueError`` (as Keras 3) and a ``TypeError``. ``Policy(None)`` is the
``float32`` policy (Keras: ``floatx()``); ``set_global_policy(None)`` is
refused, as in Keras 3.

A model's dtype (its variables and computations) defaults to the global
policy's ``variable_dtype`` when the model is created: ``float64`` under
``set_global_policy("float64")``, else ``float32``.

>>> from fastnn import mixed_precision
>>> p = mixed_precision.Policy("mixed_bfloat16")
>>> p.name, p.compute_dtype, p.variable_dtype
('mixed_bfloat16', 'bfloat16', 'float32')
>>> mixed_precision.global_policy()
<DTypePolicy "float32">
"""
from __future__ import annotations

__all__ = ["DTypePolicy", "Policy", "PolicyTypeError", "set_global_policy", "global_policy", "set_dtype_policy", "dtype_policy"]

# name -> (compute_dtype, variable_dtype)
_POLICIES = {
    "float32": ("float32", "float32"),
    "float64": ("float64", "float64"),
    "mixed_bfloat16": ("bfloat16", "float32"),
}
_WHY_NOT = {
    "bfloat16": "fastnn keeps float32 variables (master weights); use 'mixed_bfloat16'",
    "float16": "fastnn has no float16 kernels; use 'mixed_bfloat16'",
    "mixed_float16": "fastnn has no float16 kernels; use 'mixed_bfloat16'",
    "half": "fastnn has no float16 kernels; use 'mixed_bfloat16'",
}


class DTypePolicy:
    """A dtype policy: ``name``, ``compute_dtype`` and ``variable_dtype`` (strings).

    ``Policy`` is the same class (Keras 3 keeps both names).
    """

    __slots__ = ("_name",)

    def __init__(self, name="float32"):
        if isinstance(name, DTypePolicy):
            name = name.name
        elif name is None:  # Keras 3: floatx()
            name = "float32"
        if not isinstance(name, str):
            raise TypeError(f"name: expected a policy name (str), one of {sorted(_POLICIES)}, "
                            f"got {type(name).__name__}")
        if name not in _POLICIES:
            why = _WHY_NOT.get(name)
            detail = f" ({why})" if why else ""
            raise ValueError(f"name: expected one of {sorted(_POLICIES)}, got {name!r}{detail}")
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def compute_dtype(self) -> str:
        """The dtype of a layer's computations (GEMM operands): 'bfloat16' under mixed_bfloat16."""
        return _POLICIES[self._name][0]

    @property
    def variable_dtype(self) -> str:
        """The dtype of weights and optimizer state: never narrower than float32."""
        return _POLICIES[self._name][1]

    @property
    def quantization_mode(self):
        """Keras 3's attribute; fastnn has no quantized policies."""
        return None

    @property
    def is_mixed(self) -> bool:
        """True when compute and variable dtypes differ."""
        return self.compute_dtype != self.variable_dtype

    def get_config(self) -> dict:
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self):
        return hash(("DTypePolicy", self._name))

    def __reduce__(self):
        return (type(self), (self._name,))


Policy = DTypePolicy

_global = DTypePolicy("float32")


class PolicyTypeError(ValueError, TypeError):
    """A policy argument that is neither a name nor a Policy: ``ValueError`` as Keras 3
    raises it, and ``TypeError`` (what it is)."""


def _as_policy(policy, argname="policy") -> DTypePolicy:
    if isinstance(policy, DTypePolicy):
        return policy
    if isinstance(policy, str):
        return DTypePolicy(policy)
    raise PolicyTypeError(f"{argname}: expected a policy name (str) or a Policy, got {type(policy).__name__}")


def set_global_policy(policy) -> None:
    """Sets the policy of layers created from now on: a name or a :class:`Policy`.

    A refused policy leaves the global policy as it was.
    """
    global _global
    _global = _as_policy(policy)


def global_policy() -> DTypePolicy:
    """The global policy (``float32`` until :func:`set_global_policy` changes it)."""
    return _global


# Keras 3's other names for the same two functions
set_dtype_policy = set_global_policy
dtype_policy = global_policy
