"""Demo step: compress the model the fit step trained (or a quick one) and print the trade-off."""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.demo.context import DemoContext

TITLE = "compress: prune + quantize, size vs score"

EVAL_ROWS = 100_000
TRAIN_ROWS = 200_000


def _model(ctx: DemoContext, X: Any, y: Any) -> tuple[Any, str]:
    if ctx.artifacts.get("model") is not None:
        return ctx.artifacts["model"], "the fit step's model"
    if ctx.artifacts.get("model_path"):
        from daskscale.models import load_model

        return load_model(ctx.artifacts["model_path"]), f"model file {ctx.artifacts['model_path']}"
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xs, ys = np.asarray(X[:TRAIN_ROWS].compute()), np.asarray(y[:TRAIN_ROWS].compute())
    return make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)).fit(Xs, ys), \
        f"a quick SGDClassifier on {TRAIN_ROWS:,} rows"


def run(ctx: DemoContext) -> list[str]:
    from daskscale.compress.compressed import compress
    from daskscale.compress.prune import check_supported
    from daskscale.compress.report import report
    from daskscale.errors import DaskscaleError
    from daskscale.storage import load_xy

    X, y = load_xy(ctx.artifacts["store"])
    model, origin = _model(ctx, X, y)
    try:
        check_supported(model)
    except DaskscaleError as exc:
        # a daskscale wrapper (incremental / parallel trainer) holds the sklearn model inside
        if hasattr(model, "as_pipeline"):
            model, origin = model.as_pipeline(), origin + " (as a scaler + SGD pipeline)"
        else:
            inner = getattr(model, "estimator_", None)
            if inner is None:
                return [f"skipped: {exc}"]
            model, origin = inner, origin + " (its fitted estimator_)"
        check_supported(model)
    n = X.shape[0]
    Xe, ye = X[n - EVAL_ROWS:], y[n - EVAL_ROWS:]
    train = (X[:TRAIN_ROWS], y[:TRAIN_ROWS])
    settings = [{"quantize": "float16"}, {"quantize": "int8"}, {"quantize": "int8", "per_channel": False},
                {"sparsity": 0.5, "quantize": "int8"},
                {"sparsity": 0.9, "quantize": "int8", "fine_tune": True}]
    rep = report(model, Xe, settings, y=ye, train_data=train, workdir=str(ctx.path("compress")))
    ctx.artifacts["compress_report"] = rep
    ctx.artifacts["compressed_model"] = compress(model, quantize="int8")
    t = rep.table
    best = t.iloc[t["size_ratio"].idxmax()]
    lines = [f"{best['setting']}: {best['size_ratio']:.1f}x smaller on disk than float32, score "
             f"{best['score']:.4f} ({best['score_change']:+.4f}) -- {origin}, {EVAL_ROWS:,} held-out rows"]
    lines += str(rep).splitlines()
    lines.append("note: a linear model's file is mostly format overhead; see notebooks/06 for an MLP")
    return lines
