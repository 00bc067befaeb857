"""Mergeable sketches: approximate quantiles (KLL), distinct counts (exact, then HyperLogLog)
and exact class counts.

The quantile and HyperLogLog sketches are Apache DataSketches' (PyPI ``datasketches``):
a maintained C++ library whose error bounds are published. The KLL sketch (Karnin, Lang &
Liberty 2016, "Optimal quantile approximation in streams") with ``k=200`` answers any
quantile with normalized rank error at most ``kll_doubles_sketch.get_normalized_rank_error(k,
False)`` (1.33 % for k=200) with 99 % confidence, independently of the number of rows and of
how the blocks were merged: the value returned for ``q`` has a true rank in ``q +- eps``.

Over very many rows, :class:`Quantiles` can first keep a Bernoulli sample of the rows
(``sample_rate < 1``; :func:`daskscale.reduce.describe.describe` keeps about 500,000 rows),
because the sketch update (~30 ns a value) would otherwise cost more than every other
statistic together. The sample adds at most ``sqrt(ln(200) / (2 m))`` of rank error with
99 % confidence (Dvoretzky-Kiefer-Wolfowitz, ``m`` sampled rows: 0.23 % at 500,000);
``finalize`` reports the sum of both bounds as ``rank_error``.
"""

from __future__ import annotations

from typing import Any

import zlib

import datasketches as dsk
import numpy as np

from daskscale.reduce.base import Reducer

__all__ = ["Quantiles", "DistinctCount", "ClassCounts", "rank_error"]


def rank_error(k: int = 200) -> float:
    """Normalized rank error bound (99 % confidence) of a KLL sketch with parameter ``k``.

    Examples
    --------
    >>> round(rank_error(200), 4)
    0.0133
    """
    return float(dsk.kll_doubles_sketch.get_normalized_rank_error(int(k), False))


class _KLLs:
    """One KLL sketch per column; pickles through the library's own byte format."""

    def __init__(self, sketches: list[Any]):
        self.sketches = sketches

    def __getstate__(self) -> list[bytes]:
        return [s.serialize() for s in self.sketches]

    def __setstate__(self, blobs: list[bytes]) -> None:
        self.sketches = [dsk.kll_doubles_sketch.deserialize(b) for b in blobs]


class Quantiles(Reducer):
    """Approximate per-column quantiles from a mergeable KLL sketch.

    Parameters
    ----------
    q : sequence of float
        Quantiles to report, in [0, 1].
    k : int
        Sketch size; the rank error bound is :func:`rank_error` ``(k)`` (1.33 % at 200).

    Examples
    --------
    >>> import numpy as np
    >>> qs = Quantiles(q=(0.5,))
    >>> x = np.arange(1001.0)[:, None]
    >>> st = qs.merge(qs.map(x[:500]), qs.map(x[500:]))
    >>> bool(abs(qs.finalize(st)["quantiles"][0, 0] - 500) <= rank_error() * 1001)
    True
    """

    name = "quantiles"
    float64 = True

    def __init__(self, q: Any = (0.25, 0.5, 0.75), k: int = 200, sample_rate: float = 1.0):
        self.q = q
        self.k = k
        self.sample_rate = sample_rate

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> _KLLs:
        X = np.asarray(X, dtype=np.float64)
        if self.sample_rate < 1.0 and X.shape[0]:
            # Seeded by the block's bytes: the same data gives the same sketch on any worker.
            seed = zlib.crc32(X[:1].tobytes()) ^ X.shape[0]
            X = X[np.random.default_rng(seed).random(X.shape[0]) < self.sample_rate]
        out = []
        for j in range(X.shape[1]):
            col = X[:, j]
            sk = dsk.kll_doubles_sketch(int(self.k))
            col = col[~np.isnan(col)]
            if col.size:
                sk.update(np.ascontiguousarray(col))
            out.append(sk)
        return _KLLs(out)

    def merge(self, a: _KLLs, b: _KLLs) -> _KLLs:
        out = []
        for sa, sb in zip(a.sketches, b.sketches):
            s = dsk.kll_doubles_sketch(int(self.k))
            s.merge(sa)
            s.merge(sb)
            out.append(s)
        return _KLLs(out)

    def finalize(self, state: _KLLs) -> dict[str, Any]:
        q = np.atleast_1d(np.asarray(self.q, dtype=np.float64))
        vals = np.array([[s.get_quantile(float(qq)) if not s.is_empty() else np.nan for qq in q]
                         for s in state.sketches]).reshape(len(state.sketches), len(q))
        eps = rank_error(self.k)
        m = min((s.n for s in state.sketches), default=0)
        if self.sample_rate < 1.0 and m:
            eps += float(np.sqrt(np.log(200.0) / (2.0 * m)))
        return {"q": q, "quantiles": vals, "rank_error": eps, "sketches": state.sketches}


class _Distinct:
    """Per column: the sorted distinct values while few, else an HLL sketch."""

    def __init__(self, cols: list[Any]):
        self.cols = cols

    def __getstate__(self) -> list[Any]:
        return [c if isinstance(c, np.ndarray) else c.serialize_compact() for c in self.cols]

    def __setstate__(self, cols: list[Any]) -> None:
        self.cols = [c if isinstance(c, np.ndarray) else dsk.hll_sketch.deserialize(c) for c in cols]


class DistinctCount(Reducer):
    """Number of distinct non-NaN values per column: exact up to ``max_exact``, then HyperLogLog.

    Past ``max_exact`` distinct values a column switches to an HLL sketch of ``2**lg_k``
    registers, relative standard error about ``1.04 / sqrt(2**lg_k)`` (1.6 % at lg_k=12).

    Examples
    --------
    >>> import numpy as np
    >>> dc = DistinctCount()
    >>> dc.finalize(dc.merge(dc.map(np.array([[1.0], [2.0]])), dc.map(np.array([[2.0], [np.nan]]))))
    {'distinct': array([2]), 'exact': array([ True])}
    """

    name = "distinct"
    float64 = True

    def __init__(self, max_exact: int = 10_000, lg_k: int = 12):
        self.max_exact = max_exact
        self.lg_k = lg_k

    def _hll(self, values: np.ndarray) -> Any:
        h = dsk.hll_sketch(int(self.lg_k))
        for v in values.tolist():
            h.update(float(v))
        return h

    def _fit(self, u: np.ndarray) -> Any:
        return u if u.size <= self.max_exact else self._hll(u)

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> _Distinct:
        X = np.asarray(X, dtype=np.float64)
        return _Distinct([self._fit(np.unique(X[:, j][~np.isnan(X[:, j])])) for j in range(X.shape[1])])

    def merge(self, a: _Distinct, b: _Distinct) -> _Distinct:
        out = []
        for ca, cb in zip(a.cols, b.cols):
            if isinstance(ca, np.ndarray) and isinstance(cb, np.ndarray):
                out.append(self._fit(np.union1d(ca, cb)))
                continue
            u = dsk.hll_union(int(self.lg_k))
            for c in (ca, cb):
                u.update(c if not isinstance(c, np.ndarray) else self._hll(c))
            out.append(u.get_result())
        return _Distinct(out)

    def finalize(self, state: _Distinct) -> dict[str, np.ndarray]:
        exact = np.array([isinstance(c, np.ndarray) for c in state.cols])
        est = [c.size if isinstance(c, np.ndarray) else int(round(c.get_estimate())) for c in state.cols]
        return {"distinct": np.array(est, dtype=np.int64), "exact": exact}


class ClassCounts(Reducer):
    """Exact count of each label of the target ``y`` (NaN labels are counted as ``missing``).

    Examples
    --------
    >>> import numpy as np
    >>> cc = ClassCounts()
    >>> cc.finalize(cc.merge(cc.map(None, np.array([0, 1, 1])), cc.map(None, np.array([1, 2]))))
    {'counts': {0: 1, 1: 3, 2: 1}, 'missing': 0}
    """

    name = "classes"
    needs_y = True

    def map(self, X: Any, y: np.ndarray | None = None) -> dict[Any, int]:
        if y is None:
            return {}
        y = np.asarray(y)
        miss = 0
        if y.dtype.kind == "f":
            nan = np.isnan(y)
            miss, y = int(nan.sum()), y[~nan]
        labels, counts = np.unique(y, return_counts=True)
        out: dict[Any, int] = {lab.item() if hasattr(lab, "item") else lab: int(c) for lab, c in zip(labels, counts)}
        if miss:
            out[None] = miss
        return out

    def merge(self, a: dict[Any, int], b: dict[Any, int]) -> dict[Any, int]:
        out = dict(a)
        for k, v in b.items():
            out[k] = out.get(k, 0) + v
        return out

    def finalize(self, state: dict[Any, int]) -> dict[str, Any]:
        counts = {k: state[k] for k in sorted(k for k in state if k is not None)}
        return {"counts": counts, "missing": state.get(None, 0)}

    def empty(self, n_features: int) -> dict[Any, int]:
        return {}
