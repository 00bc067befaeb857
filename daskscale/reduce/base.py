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
from typing import Any, Callable, Iterable, Mapping

import dask
import numpy as np

from daskscale.errors import InputTypeError
from daskscale.reduce.inputs import as_reduce_data
from daskscale.storage.convert import Data

__all__ = ["Reducer", "reduce", "reduce_states", "update", "finalize_all", "map_all", "merge_all", "fold_states"]


class Reducer(abc.ABC):
    """A statistic over row blocks, written as a mergeable state.

    Subclasses set ``name`` and implement :meth:`map`, :meth:`merge`, :meth:`finalize`.
    ``needs_y`` reducers receive the target block; others get ``y=None``. When no reducer of a
    pass ``needs_x`` (say :class:`~daskscale.learn.prep.Labels` alone), only ``y`` is read and
    the reducers get a ``(rows, 0)`` ``X``.
    """

    name: str = "reducer"
    needs_y: bool = False
    needs_x: bool = True
    #: receive the block already converted to float64 (done once per block for all such reducers);
    #: the state must not keep a view of it: a ``scratch`` reducer may overwrite it afterwards
    float64: bool = False
    #: may overwrite a float64 block that is nobody else's (see :meth:`map_scratch`)
    scratch: bool = False
    #: a ``float64`` reducer that receives integer blocks unconverted, to subtract a reference
    #: value exactly before converting (an int64 near 2**62 has no exact float64)
    exact_ints: bool = False
    #: maps a block of any size in bounded memory by itself: :func:`map_all` does not cut the
    #: block into :data:`PIECE_ROWS` pieces when every reducer of the pass says so
    whole_blocks: bool = False

    @abc.abstractmethod
    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """State of one block (``X`` is 2-D, rows x features)."""

    @abc.abstractmethod
    def merge(self, a: Any, b: Any) -> Any:
        """Merge two states; must be associative."""

    def map_scratch(self, X: np.ndarray, y: np.ndarray | None = None) -> Any:
        """:meth:`map` of a float64 block this reducer may overwrite (no copy of its own needed).

        :func:`map_all` calls it, for one ``scratch`` reducer, with the shared float64 copy of
        the block, after every other reducer has mapped it. The default is :meth:`map`.
        """
        return self.map(X, y)

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
    if isinstance(reducers, Mapping):
        items = [(k, k, r) for k, r in reducers.items()]
    else:
        items = [(i, getattr(r, "name", None), r) for i, r in enumerate(reducers)]
    out: dict[str, Reducer] = {}
    for where_key, key, r in items:
        if not isinstance(r, Reducer):
            where = f"reducers[{where_key!r}]"
            raise InputTypeError(f"{where}: {r!r} (type {type(r).__name__}) is not a daskscale Reducer; "
                                 "subclass daskscale.reduce.Reducer and implement map/merge/finalize")
        out[str(key or r.name)] = r
    if not out:
        raise InputTypeError("no reducers given")
    return out


#: rows mapped at a time inside a block (32k x 50 float64 = 13 MB)
PIECE_ROWS = 32_768


def map_all(reducers: Mapping[str, Reducer], X: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    """All reducers' states of one block: the block is read once for all of them.

    Reducers with ``float64 = True`` share one float64 copy of the block, made here once,
    instead of each converting (and allocating) its own (``exact_ints`` ones get an integer
    block as it is). When that copy is a conversion (``X`` is not float64), the first
    ``scratch`` reducer gets it last, to overwrite (:meth:`Reducer.map_scratch`).
    """
    if X.shape[0] > PIECE_ROWS and not all(r.whole_blocks for r in reducers.values()):
        # Map a big block piece by piece: bounds the float64 copy and every reducer's
        # temporaries (a few times the piece), whatever the chunk size of the store.
        pieces = [map_all(reducers, X[a:a + PIECE_ROWS], None if y is None else y[a:a + PIECE_ROWS])
                  for a in range(0, X.shape[0], PIECE_ROWS)]
        return merge_all(reducers, *pieces)
    ints = X.dtype.kind in "iu"
    wants64 = {k for k, r in reducers.items() if r.float64 and not (ints and r.exact_ints)}
    X64 = np.asarray(X, dtype=np.float64) if wants64 else None
    last = None
    # only a conversion is a copy: a float64 block may come back as a new *view* of itself
    # (an unpickled array's dtype is not NumPy's own float64 object), so ``X64 is X`` won't do
    if X64 is not None and X.dtype != np.float64:
        last = next((k for k, r in reducers.items() if k in wants64 and r.scratch), None)
    out = {k: r.map(X64 if k in wants64 else X, y if r.needs_y else None) for k, r in reducers.items() if k != last}
    if last is not None:
        r = reducers[last]
        out[last] = r.map_scratch(X64, y if r.needs_y else None)
    return {k: out[k] for k in reducers}


def merge_all(reducers: Mapping[str, Reducer], *states: dict[str, Any]) -> dict[str, Any]:
    """Merge several fused states, reducer by reducer."""
    return {k: _fold(r.merge, [s[k] for s in states]) for k, r in reducers.items()}


def finalize_all(reducers: Mapping[str, Reducer], state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: r.finalize(state[k]) for k, r in reducers.items()}


def _merge_parts(reducers: Mapping[str, Reducer], *parts: Any) -> dict[str, Any]:
    # Block states arrive wrapped in 1x1 object arrays (the output of map_blocks).
    states = [p[0, 0] if isinstance(p, np.ndarray) else p for p in parts]
    return states[0] if len(states) == 1 else merge_all(reducers, *states)


def _tree(reducers: Mapping[str, Reducer], parts: list[Any], split_every: int) -> Any:
    k = max(2, int(split_every))
    parts = [dask.delayed(_merge_parts, pure=True)(reducers, *parts[i:i + k]) for i in range(0, len(parts), k)]
    while len(parts) > 1:
        parts = [dask.delayed(merge_all, pure=True)(reducers, *parts[i:i + k]) for i in range(0, len(parts), k)]
    return parts[0]


def fold_states(reducers: Mapping[str, Reducer], states: list[dict[str, Any]], split_every: int = 8) -> dict[str, Any]:
    """Block states (in row order, already in this process) merged in :func:`_tree`'s order:
    the same bits as :func:`reduce` gives for the same blocks."""
    k = max(2, int(split_every))
    while len(states) > 1:
        states = [merge_all(reducers, *states[i:i + k]) for i in range(0, len(states), k)]
    return states[0]


def _map_block(X: np.ndarray, y: np.ndarray | None = None, *, reducers: Mapping[str, Reducer]) -> np.ndarray:
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = map_all(reducers, X, None if y is None else y[:, 0])
    return out


def _map_target_block(y: np.ndarray, *, reducers: Mapping[str, Reducer]) -> np.ndarray:
    return _map_block(np.empty((len(y), 0)), y, reducers=reducers)


def _block_states(d: Data, rs: Mapping[str, Reducer]) -> list[Any]:
    """One delayed state per row block. Built with ``map_blocks`` so that Dask fuses the
    chunk read (and decompression) with the map into a single task per block: a chunk is
    never held in memory waiting for its reducer, and is read once for all reducers."""
    import dask.array as da

    args = [d.X]
    if any(r.needs_y for r in rs.values()) and d.y is not None:
        args.append(d.y[:, None])
    fn = _map_block
    if len(args) == 2 and not any(r.needs_x for r in rs.values()):
        args, fn = args[1:], _map_target_block  # y alone: X's chunks are not read at all
    states = da.map_blocks(fn, *args, reducers=rs, chunks=(1, 1), dtype=object,
                           name="map_all-" + dask.base.tokenize(d.X, *args, rs))
    return list(states.to_delayed(optimize_graph=True)[:, 0])


def reduce_states(data: Any, reducers: Any, *, y: Any = None, split_every: int = 8,
                  compute: bool = True, progress: Callable[[int], Any] | None = None) -> Any:
    """Fused states of ``reducers`` over ``data`` (anything :func:`~daskscale.storage.convert.as_data`
    accepts; a DataFrame keeps its dtype: :func:`~daskscale.reduce.inputs.as_reduce_data`).

    Returns the merged state dict, or a ``dask.delayed`` of it when ``compute=False``.
    ``progress(n_done_blocks)`` is called as block states arrive (needs a distributed client;
    ignored otherwise), e.g. ``bar.update`` of a :func:`daskscale.monitor.progress` bar.
    """
    rs = _check(reducers)
    d = data if isinstance(data, Data) else as_reduce_data(data, y)
    parts = _block_states(d, rs)
    client = _client() if (compute and progress is not None) else None
    if client is not None:
        # Map tasks run as futures so the bar moves per block; the same tree merges them.
        from distributed import as_completed

        futures = client.compute(parts)
        for _ in as_completed(futures):
            progress(1)
        return _tree(rs, futures, split_every).compute()
    out = _tree(rs, parts, split_every)
    return out.compute() if compute else out


def _client() -> Any:
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def reduce(data: Any, reducers: Any, *, y: Any = None, split_every: int = 8,
           progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
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
    return finalize_all(rs, reduce_states(data, rs, y=y, split_every=split_every, progress=progress))


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
