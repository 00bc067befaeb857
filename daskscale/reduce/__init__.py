"""Map-reduce: one-pass, fused, mergeable statistics over chunked data."""

from daskscale.reduce.base import Reducer, finalize_all, reduce, reduce_states, update
from daskscale.reduce.moments import Moments

__all__ = ["Reducer", "reduce", "reduce_states", "update", "finalize_all", "Moments"]
