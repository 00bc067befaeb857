"""Model compression: size, accuracy and prediction speed, compressed vs original, same run.

Two models whose files are dominated by their weights (a linear model with 50 features is
mostly format overhead, reported by ``daskscale compress`` but not a fair size test):

- ``synthetic``: StandardScaler + MLPClassifier(256) on the benchmark dataset (50 features).
- ``digits``: MLPClassifier(256) on the shipped digits CSV (64 features, 10 classes).

``track_*_size_ratio``: float32 file / compressed file. The float32 reference is the same
model (scaler folded in) in the same safe format with the same zip compression, its weights
float32: only the precision of the weights differs.
``track_*_score_change``: held-out accuracy change in points (negative = worse).
``prune90``: gradual magnitude pruning to 90% (5 steps, cubic schedule) during masked
fine-tuning (:func:`daskscale.compress.prune_gradually`); ``track_dense_finetuned_score_change``
is the control, the original fine-tuned for the same updates without pruning.
``track_*_rows_per_s``: prediction throughput on a dask array; the original sklearn model
predicting blockwise (``map_blocks``) is the baseline, in the same class.
"""

from __future__ import annotations

import copy
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common import cached_classification, client, scaled

HIDDEN = 256
#: fine-tuning passes and mini-batch rows (one Adam step each, the mask applied after each):
#: about as many steps as the original training had. digits: 1,257 rows, 7 steps a pass,
#: fitted for 60 passes (420 steps), fine-tuned 700; synthetic: 42,000 rows, 210 steps a pass,
#: fitted for 10 (2,100 steps), fine-tuned 1,260
FINE_TUNE = {"digits": (100, 200), "synthetic": (6, 200)}


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
    from daskscale.storage.convert import aligned

    X, y = load_xy(store)
    X, y = aligned(X.compute()), aligned(y.compute())
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

        from daskscale.compress import fine_tune, prune_gradually
        from daskscale.compress.prune import weights_of
        from daskscale.models import save_model

        client()
        root = Path(tempfile.mkdtemp(prefix="daskscale-bench-compress-"))
        for name in self.params:
            Xtr, ytr, _, _ = _data(name)
            mlp = MLPClassifier((HIDDEN,), max_iter=max(3, scaled(60 if name == "digits" else 10)), random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = (mlp if name == "digits" else make_pipeline(StandardScaler(), mlp)).fit(Xtr, ytr)
                epochs, batch = FINE_TUNE[name]
                epochs = max(1, scaled(epochs))
                pruned, _ = prune_gradually(model, 0.9, Xtr, ytr, steps=5, epochs=epochs, batch_rows=batch)
                # the control: the same updates without pruning
                dense = copy.deepcopy(model)
                fine_tune(dense, [np.ones(w.shape, bool) for w in weights_of(dense)], Xtr, ytr, epochs=epochs,
                          batch_rows=batch)
            save_model(model, root / f"{name}.skops")
            save_model(pruned, root / f"{name}-pruned.skops")
            save_model(dense, root / f"{name}-dense-tuned.skops")
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

    def track_float32_file_bytes(self, root, dataset):
        return self.ref

    def track_int8_file_bytes(self, root, dataset):
        return self._size(self.int8)

    # -- accuracy (points vs the original) ------------------------------------------------
    def track_int8_score_change(self, root, dataset):
        return self._points(self.int8)

    def track_int8_per_tensor_score_change(self, root, dataset):
        return self._points(self.int8_tensor)

    def track_prune90_finetuned_score_change(self, root, dataset):
        from daskscale.compress import compress

        return self._points(compress(self.pruned, quantize="float32"))

    def track_prune90_finetuned_sparsity(self, root, dataset):
        from daskscale.compress import sparsity_of

        return sparsity_of(self.pruned)

    def track_dense_finetuned_score_change(self, root, dataset):
        from daskscale.models import load_model

        dense = load_model(self.root / f"{dataset}-dense-tuned.skops")
        return 100 * (dense.score(self.Xte, self.yte) - self.model.score(self.Xte, self.yte))

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
    for _name in [n for n in list(locals()) if n.endswith("_file_bytes")]:
        locals()[_name].unit = "bytes"
