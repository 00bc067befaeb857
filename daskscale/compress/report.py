"""The trade-off report: size, sparsity, held-out score and speed for each compression setting.

``report(model, eval_data, settings=[...])`` compresses ``model`` once per setting, scores each
version on the held-out data (blockwise), times prediction on it, measures the bytes in memory
and in a saved file, and returns a :class:`CompressionReport` (table, plot, JSON). The first row
is always the uncompressed float32 reference that the other rows are compared with.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daskscale.compress.compressed import compress
from daskscale.compress.io import file_size
from daskscale.compress.prune import check_sparsity, check_supported, prune_gradually
from daskscale.compress.quantize import check_mode

__all__ = ["report", "CompressionReport", "DEFAULT_SWEEP", "setting_name"]

#: the sweep used when no settings are given: pruning curve, then quantization on top
DEFAULT_SWEEP: list[dict[str, Any]] = [
    {"sparsity": s, "quantize": "float32"} for s in (0.5, 0.8, 0.9, 0.95)
] + [{"sparsity": 0.0, "quantize": "float16"}, {"sparsity": 0.0, "quantize": "int8"},
     {"sparsity": 0.0, "quantize": "int8", "per_channel": False}, {"sparsity": 0.9, "quantize": "int8"}]


def setting_name(s: dict[str, Any]) -> str:
    """A short label such as ``"prune 0.9 + int8"``."""
    parts = []
    if s.get("sparsity"):
        parts.append(f"prune {s['sparsity']:g}")
    if s.get("keep_units"):
        parts.append(f"units {s['keep_units']:g}")
    q = s.get("quantize") or "float32"
    parts.append(q + ("/tensor" if q == "int8" and s.get("per_channel") is False else ""))
    if s.get("fine_tune"):
        parts.append("fine-tuned")
    return " + ".join(parts)


@dataclass
class CompressionReport:
    """Result of :func:`report`: one row per setting (``table``), a plot and JSON."""

    table: pd.DataFrame
    model_type: str

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model_type, "rows": json.loads(self.table.to_json(orient="records"))}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def plot(self, ax: Any = None) -> Any:
        """Held-out score against file size (log scale), one labelled point per setting."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4.5))
        t = self.table
        ax.plot(t["bytes_disk"], t["score"], "o")
        for _, r in t.iterrows():
            ax.annotate(r["setting"], (r["bytes_disk"], r["score"]), fontsize=8,
                        xytext=(4, 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("model file size on disk (bytes, log scale)")
        ax.set_ylabel("held-out score")
        ax.set_title(f"compression trade-off: {self.model_type}")
        ax.grid(True, alpha=0.3)
        return ax

    def _repr_html_(self) -> str:
        fmt = {"score": "{:.4f}", "score_change": "{:+.4f}", "sparsity": "{:.2f}", "size_ratio": "{:.2f}x",
               "rows_per_s": "{:,.0f}", "bytes_disk": "{:,}", "bytes_memory": "{:,}"}
        body = self.table.to_html(index=False, formatters={k: v.format for k, v in fmt.items()})
        return f"<h4>compression report: {self.model_type}</h4>{body}"

    def __str__(self) -> str:
        return self.table.to_string(index=False)


def _check_setting(s: dict[str, Any]) -> dict[str, Any]:
    from daskscale.errors import SchemaError

    unknown = set(s) - {"sparsity", "quantize", "per_channel", "scope", "keep_units", "fine_tune"}
    if unknown:
        raise SchemaError(f"unknown keys {sorted(unknown)} in setting {s}; use sparsity, quantize, "
                          "per_channel, scope, keep_units, fine_tune")
    check_sparsity(s.get("sparsity", 0.0))
    check_mode(s.get("quantize"))
    return s


def _throughput(model: Any, X: Any, repeats: int = 1) -> float:
    """Rows per second of ``predict`` over the whole dask array (best of ``repeats``)."""
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict(X).compute()
        best = min(best, time.perf_counter() - t)
    return X.shape[0] / best


def report(model: Any, eval_data: Any, settings: list[dict[str, Any]] | None = None, *, y: Any = None,
           train_data: Any = None, fine_tune_epochs: int = 1, repeats: int = 1,
           workdir: str | None = None) -> CompressionReport:
    """Sweep compression settings and measure each one.

    Parameters
    ----------
    model : fitted linear model or MLP
    eval_data : store path, dask/NumPy array, DataFrame (held-out rows, with ``y``)
    settings : list of dict
        Keys ``sparsity``, ``quantize``, ``per_channel``, ``scope``, ``keep_units``, and
        ``fine_tune`` (True: prune gradually while fine-tuning on ``train_data``, the mask fixed
        between steps, :func:`~daskscale.compress.prune_gradually`).
        Default :data:`DEFAULT_SWEEP`.
    y : target of ``eval_data`` when it is an array.
    train_data : store path or ``(X, y)`` for fine-tuning.
    fine_tune_epochs : passes over ``train_data`` while pruning and fine-tuning.

    Returns
    -------
    CompressionReport
        Columns: setting, sparsity, bytes_memory, bytes_disk, size_ratio (float32 file /
        this file), score, score_change (vs float32), rows_per_s.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(500, 20)); yy = (X[:, :3].sum(1) > 0).astype(int)
    >>> m = SGDClassifier(random_state=0).fit(X, yy)
    >>> r = report(m, X, [{"quantize": "int8"}], y=yy)
    >>> list(r.table["setting"])
    ['float32', 'int8']
    """
    from daskscale.compress.unwrap import plain_model
    from daskscale.storage.convert import as_data

    model = plain_model(model)
    check_supported(model)
    settings = [_check_setting(dict(s)) for s in (DEFAULT_SWEEP if settings is None else settings)]
    data = as_data(eval_data, y, require_y=True)
    X, yv = data.X.persist(), data.y.persist()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="daskscale-compress-"))
    rows = []
    for i, s in enumerate([{"quantize": "float32"}] + settings):
        m = model
        if s.get("fine_tune") and s.get("sparsity"):
            if train_data is None:
                from daskscale.errors import SchemaError

                raise SchemaError(f"setting {s} asks for fine-tuning but no train_data was given")
            tx, ty = train_data if isinstance(train_data, tuple) else (train_data, None)
            m, _ = prune_gradually(model, s["sparsity"], tx, ty, epochs=fine_tune_epochs,
                                   scope=s.get("scope", "global"))
        c = compress(m, sparsity=s.get("sparsity", 0.0), scope=s.get("scope", "global"),
                     keep_units=s.get("keep_units"), quantize=s.get("quantize"),
                     per_channel=s.get("per_channel", True))
        rows.append({"setting": setting_name(s), "sparsity": round(c.sparsity_, 4), "bytes_memory": c.nbytes_,
                     "bytes_disk": file_size(c, workdir / f"setting{i}.skops"), "score": c.score(X, yv),
                     "rows_per_s": _throughput(c, X, repeats)})
    t = pd.DataFrame(rows)
    t["size_ratio"] = t["bytes_disk"].iloc[0] / t["bytes_disk"]
    t["score_change"] = t["score"] - t["score"].iloc[0]
    t = t[["setting", "sparsity", "bytes_memory", "bytes_disk", "size_ratio", "score", "score_change", "rows_per_s"]]
    return CompressionReport(t, type(model).__name__)
