"""Argument checks whose messages name the parameter, shared by every module (one copy).

The functions a notebook teaches (``part_two/im2col.py``, ``part_two/layers.py``) carry their
own small checks instead: they run in the grading sandbox, which cannot import the package.
"""

from __future__ import annotations

import numpy as np


def require_int(name: str, value: object, minimum: int = 1,
                error: type[Exception] = ValueError) -> int:
    """``value`` as an int if it is an integer (not a bool) >= ``minimum``; else raise
    ``error`` naming ``name``, e.g. "repeats must be an integer >= 1, got 0"."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise error(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
