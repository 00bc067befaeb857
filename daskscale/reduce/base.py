"""The mergeable-state protocol, and the one executor that runs any set of reducers.

A reducer folds row blocks into a small *state*::

    map(X_block, y_block) -> state      # on the worker that holds the block
    merge(a, b)           -> state      # associative; Dask tree-reduces the states
    finalize(state)       -> result

The executor fuses every requested reducer into one task per block, so each chunk is read
and decompressed once, then merges the per-block states with a tree of ``split_every``
fan-in. :func:`update` applies the same reducers to a new block of a stream.
"""

from __future__ import annotations

import abc
from functools import reduce as _fold
from typing import Any, Iterable, Mapping

import dask
import numpy as np

from daskscale.errors import InputTypeError
from daskscale.storage.convert import Data, as_data

__all__ = ["Reducer", "reduce", "reduce_states", "update", "finalize_all", "map_all", "merge_all"]


class Reducer(abc.ABC):
    """A statistic over row blocks, written as a mergeable state.

    Subclasses set ``name`` and implement :meth:`map`, :meth:`merge`, :meth:`finalize`.
    ``needs_y`` reducers receive the target block; others get ``y=None``.
    """

    name: str = "reducer"
    needs_y: bool = False

    @abc.abstractmethod
    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """State of one block (``X`` is 2-D, rows x features)."""

    @abc.abstractmethod
    def merge(self, a: Any, b: Any) -> Any:
        """Merge two states; must be associative."""

    def finalize(self, state: Any) -> Any:
        """Turn a state into the result (default: the state itself)."""
        return state

    def empty(self, n_features: int) -> Any:
        """The state of no rows: ``merge(empty, s) == s``."""
        return self.map(np.empty((0, n_features)), None if not self.needs_y else np.empty(0))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"


def _check(reducers: Any) -> dict[str, Reducer]:
    if isinstance(reducers, Reducer):
        reducers = [reducers]
    items = reducers.items() if isinstance(reducers, Mapping) else ((getattr(r, "name", None), r) for r in reducers)
    out: dict[str, Reducer] = {}
    for key, r in items:
        if not isinstance(r, Reducer):
            raise InputTypeError(f"{r!r} is not a daskscale Reducer (subclass daskscale.reduce.Reducer)")
        out[str(key or r.name)] = r
    if not out:
        raise InputTypeError("no reducers given")
    return out


def map_all(reducers: Mapping[str, Reducer], X: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    """All reducers' states of one block: the block is read once for all of them."""
    return {k: r.map(X, y if r.needs_y else None) for k, r in reducers.items()}


def merge_all(reducers: Mapping[str, Reducer], *states: dict[str, Any]) -> dict[str, Any]:
    """Merge several fused states, reducer by reducer."""
    return {k: _fold(r.merge, [s[k] for s in states]) for k, r in reducers.items()}


def finalize_all(reducers: Mapping[str, Reducer], state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: r.finalize(state[k]) for k, r in reducers.items()}


def _tree(reducers: Mapping[str, Reducer], parts: list[Any], split_every: int) -> Any:
    k = max(2, int(split_every))
    while len(parts) > 1:
        parts = [dask.delayed(merge_all, pure=True)(reducers, *parts[i:i + k]) for i in range(0, len(parts), k)]
    return parts[0]


def reduce_states(data: Any, reducers: Any, *, y: Any = None, split_every: int = 8,
                  compute: bool = True) -> Any:
    """Fused states of ``reducers`` over ``data`` (anything :func:`as_data` accepts).

    Returns the merged state dict, or a ``dask.delayed`` of it when ``compute=False``.
    """
    rs = _check(reducers)
    d = data if isinstance(data, Data) else as_data(data, y)
    need_y = any(r.needs_y for r in rs.values())
    xb = d.X.to_delayed(optimize_graph=True)[:, 0]
    yb = d.y.to_delayed(optimize_graph=True) if (need_y and d.y is not None) else [None] * len(xb)
    parts = [dask.delayed(map_all, pure=True)(rs, x, yy) for x, yy in zip(xb, yb)]
    out = _tree(rs, parts, split_every)
    return out.compute() if compute else out


def reduce(data: Any, reducers: Any, *, y: Any = None, split_every: int = 8) -> dict[str, Any]:
    """Run ``reducers`` over ``data`` in one pass and return ``{name: result}``.

    Examples
    --------
    >>> import numpy as np
    >>> from daskscale.reduce import Moments
    >>> out = reduce(np.arange(20.0).reshape(10, 2), [Moments()])
    >>> out["moments"]["mean"].tolist()
    [9.0, 10.0]
    """
    rs = _check(reducers)
    return finalize_all(rs, reduce_states(data, rs, y=y, split_every=split_every))


def update(reducers: Any, state: Mapping[str, Any] | None, X: np.ndarray, y: np.ndarray | None = None) -> dict[str, Any]:
    """Fold one more block into a state (for streams); ``state=None`` starts a new one."""
    rs = _check(reducers)
    new = map_all(rs, np.asarray(X), y)
    return new if state is None else merge_all(rs, dict(state), new)


def states_of_blocks(reducers: Any, blocks: Iterable[tuple[np.ndarray, np.ndarray | None]]) -> dict[str, Any]:
    """Fold an in-memory iterable of ``(X, y)`` blocks (no Dask): the streaming path."""
    state = None
    for X, y in blocks:
        state = update(reducers, state, X, y)
    return state
