"""Map-reduce: one-pass, fused, mergeable statistics over chunked data.

A :class:`Reducer` is ``map(block) -> state``, ``merge(a, b) -> state``,
``finalize(state) -> result`` plus an empty state; :func:`reduce` runs any set of them in one
pass (one task per row block, a tree merge of ``split_every``). A user-defined reducer is a
few lines:

>>> import numpy as np
>>> from daskscale.reduce import Reducer, reduce
>>> class CountAbove(Reducer):
...     name = "above"
...     float64 = True
...     def __init__(self, threshold=0.0):
...         self.threshold = threshold
...     def map(self, X, y=None):
...         return (X > self.threshold).sum(axis=0)
...     def merge(self, a, b):
...         return a + b
>>> reduce(np.array([[1.0, -1.0], [2.0, 3.0]]), [CountAbove(1.5)])["above"].tolist()
[1, 1]
"""

from daskscale.reduce.base import Reducer, finalize_all, reduce, reduce_states, update
from daskscale.reduce.covariance import PCA, Covariance
from daskscale.reduce.groupby import groupby_reduce
from daskscale.reduce.histogram import Histogram, MinMax
from daskscale.reduce.moments import Moments
from daskscale.reduce.sketches import ClassCounts, DistinctCount, Quantiles, rank_error
from daskscale.reduce.summary import SUMMARY_STATS, Summary

__all__ = ["Reducer", "reduce", "reduce_states", "update", "finalize_all", "Moments", "Summary",
           "SUMMARY_STATS", "MinMax", "Histogram", "Quantiles", "DistinctCount", "ClassCounts",
           "Covariance", "PCA", "rank_error", "groupby_reduce"]

