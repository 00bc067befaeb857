"""Online learning: prequential (test-then-train) learning on streams, drift, exactly-once resume."""

from daskscale.online.csv_tail import CsvTailSource
from daskscale.online.drift import ADWIN, DDM, DriftDetector, PageHinkley, make_detector
from daskscale.online.evaluate import Features, PrequentialResult, prequential
from daskscale.online.events import EventBatcher, EventSource, EventStream, MicroBatch
from daskscale.online.learner import OnlineLearner
from daskscale.online.linear import OnlineLogisticRegression
from daskscale.online.metrics import PrequentialMetrics
from daskscale.online.preprocess import OnlineOneHot, OnlineStandardScaler
from daskscale.online.river_model import RiverClassifier
from daskscale.online.sources import Batch, DirectorySource, IteratorSource, ReplaySource, StoreSource, as_source

__all__ = ["OnlineLearner", "Batch", "StoreSource", "DirectorySource", "IteratorSource", "ReplaySource",
           "as_source", "CsvTailSource", "DriftDetector", "DDM", "PageHinkley", "ADWIN", "make_detector",
           "EventBatcher", "EventSource", "EventStream", "MicroBatch", "OnlineStandardScaler", "OnlineOneHot",
           "Features", "prequential", "OnlineLogisticRegression", "PrequentialResult", "PrequentialMetrics", "RiverClassifier"]
