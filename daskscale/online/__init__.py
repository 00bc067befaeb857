"""Online learning: prequential (test-then-train) learning on streams, drift, exactly-once resume."""

from daskscale.online.drift import ADWIN, DDM, DriftDetector, PageHinkley, make_detector
from daskscale.online.learner import OnlineLearner
from daskscale.online.sources import Batch, DirectorySource, IteratorSource, ReplaySource, StoreSource, as_source

__all__ = ["OnlineLearner", "Batch", "StoreSource", "DirectorySource", "IteratorSource", "ReplaySource",
           "as_source", "DriftDetector", "DDM", "PageHinkley", "ADWIN", "make_detector"]
