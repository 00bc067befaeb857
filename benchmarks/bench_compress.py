"""Model compression: size, accuracy and prediction speed, compressed vs original, same run.

Two models whose files are dominated by their weights (a linear model with 50 features is
mostly format overhead, reported by ``daskscale compress`` but not a fair size test):

- ``synthetic``: StandardScaler + MLPClassifier(256) on the benchmark dataset (50 features).
- ``digits``: MLPClassifier(256) on the shipped digits CSV (64 features, 10 classes).

``track_*_size_ratio``: float32 file / compressed file (both saved the same way).
``track_*_score_change``: held-out accuracy change in points (negative = worse).
``track_*_rows_per_s``: prediction throughput on a dask array; the original sklearn model
predicting blockwise (``map_blocks``) is the baseline, in the same class.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common import cached_classification, client, scaled

HIDDEN = 256


def _data(name: str):
    import pandas as pd

    from daskscale.datasets import real_dataset_path
    from daskscale.storage import load_xy

    if name == "digits":
        path, target = real_dataset_path("digits")
        df = pd.read_csv(path)
        y = df.pop(target).to_numpy()
        X = df.to_numpy(np.float32) / 16
        cut = int(0.7 * len(X))
        return X[:cut], y[:cut], X[cut:], y[cut:]
    rows = scaled(60_000, 2_000)
    store = cached_classification("compress", rows, 50, chunk_rows=max(500, rows // 6), seed=7)
    X, y = load_xy(store)
    X, y = X.compute(), y.compute()
    cut = int(0.7 * rows)
    return X[:cut], y[:cut], X[cut:], y[cut:]


class Compression:
    params = ["synthetic", "digits"]
    param_names = ["dataset"]
    timeout = 1200

    def setup_cache(self):
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from daskscale.compress import fine_tune, magnitude_prune
        from daskscale.models import save_model

        client()
        root = Path(tempfile.mkdtemp(prefix="daskscale-bench-compress-"))
        for name in self.params:
            Xtr, ytr, _, _ = _data(name)
            mlp = MLPClassifier((HIDDEN,), max_iter=max(3, scaled(60 if name == "digits" else 10)), random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = (mlp if name == "digits" else make_pipeline(StandardScaler(), mlp)).fit(Xtr, ytr)
                pruned, masks = magnitude_prune(model, 0.9)
                fine_tune(pruned, masks, Xtr, ytr, epochs=max(1, scaled(10 if name == "digits" else 3)),
                          batch_rows=200 if name == "digits" else 500)
            save_model(model, root / f"{name}.skops")
            save_model(pruned, root / f"{name}-pruned.skops")
        return str(root)

    def setup(self, root, dataset):
        import dask.array as da

        from daskscale.compress import compress
        from daskscale.models import load_model

        client()
        self.root = Path(root)
        self.model = load_model(self.root / f"{dataset}.skops")
        self.pruned = load_model(self.root / f"{dataset}-pruned.skops")
        _, _, self.Xte, self.yte = _data(dataset)
        self.f32 = compress(self.model, quantize="float32")
        self.int8 = compress(self.model, quantize="int8")
        self.int8_tensor = compress(self.model, quantize="int8", per_channel=False)
        self.pruned_int8 = compress(self.pruned, quantize="int8")
        # a larger dask array for throughput: the held-out rows tiled, 4 blocks
        reps = max(1, scaled(400_000, 1) // len(self.Xte))
        big = np.tile(self.Xte, (reps, 1))
        self.Xd = da.from_array(big, chunks=(max(1, len(big) // 4), -1)).persist()
        self.tmp = Path(tempfile.mkdtemp(prefix="daskscale-bench-size-"))
        self.ref = self._size(self.f32)

    def _size(self, c) -> int:
        from daskscale.compress import file_size

        return file_size(c, self.tmp / "m.skops")

    def _points(self, c) -> float:
        return 100 * (c.score(self.Xte, self.yte) - self.model.score(self.Xte, self.yte))

    def _original_predict(self):
        m = self.model
        return self.Xd.map_blocks(m.predict, drop_axis=1, dtype=self.yte.dtype).compute()

    def _rate(self, fn) -> float:
        t = time.perf_counter()
        fn()
        return self.Xd.shape[0] / (time.perf_counter() - t)

    # -- size -------------------------------------------------------------------------
    def track_int8_size_ratio(self, root, dataset):
        return self.ref / self._size(self.int8)

    def track_int8_per_tensor_size_ratio(self, root, dataset):
        return self.ref / self._size(self.int8_tensor)

    def track_prune90_int8_size_ratio(self, root, dataset):
        return self.ref / self._size(self.pruned_int8)

    def track_original_sklearn_file_bytes(self, root, dataset):
        return (self.root / f"{dataset}.skops").stat().st_size

    # -- accuracy (points vs the original) ------------------------------------------------
    def track_int8_score_change(self, root, dataset):
        return self._points(self.int8)

    def track_int8_per_tensor_score_change(self, root, dataset):
        return self._points(self.int8_tensor)

    def track_prune90_finetuned_score_change(self, root, dataset):
        from daskscale.compress import compress

        return self._points(compress(self.pruned, quantize="float32"))

    def track_prune90_int8_score_change(self, root, dataset):
        return self._points(self.pruned_int8)

    # -- speed on a dask array --------------------------------------------------------------
    def time_predict_original(self, root, dataset):
        self._original_predict()

    def time_predict_int8(self, root, dataset):
        self.int8.predict(self.Xd).compute()

    def time_predict_prune90_int8(self, root, dataset):
        self.pruned_int8.predict(self.Xd).compute()

    def track_original_rows_per_s(self, root, dataset):
        return self._rate(self._original_predict)

    def track_int8_rows_per_s(self, root, dataset):
        return self._rate(lambda: self.int8.predict(self.Xd).compute())

    def track_float16_rows_per_s(self, root, dataset):
        from daskscale.compress import compress

        c = compress(self.model, quantize="float16")
        return self._rate(lambda: c.predict(self.Xd).compute())

    def track_prune90_int8_rows_per_s(self, root, dataset):
        return self._rate(lambda: self.pruned_int8.predict(self.Xd).compute())

    for _name in [n for n in list(locals()) if n.endswith("_size_ratio")]:
        locals()[_name].unit = "x"
    for _name in [n for n in list(locals()) if n.endswith("_rows_per_s")]:
        locals()[_name].unit = "rows/s"
    for _name in [n for n in list(locals()) if n.endswith("_score_change")]:
        locals()[_name].unit = "points"
