"""Demo step: compress an MLP and the fit step's linear model; say which meets the goal.

The goal: a file at least :data:`GOAL_RATIO` times smaller than the float32 model, losing at
most :data:`GOAL_POINTS` points of held-out accuracy. An MLP's file is its weights, so int8
and pruning shrink it; a linear model on a few dozen features is mostly file-format overhead,
so it cannot shrink much, and the report says so rather than quoting its largest ratio.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daskscale.demo.context import DemoContext

TITLE = "compress: prune + quantize, size vs score"

GOAL_RATIO = 4.0
GOAL_POINTS = 1.0
EVAL_ROWS = 100_000
TRAIN_ROWS = 200_000
MLP_ROWS = 30_000
MLP_HIDDEN = 128
SETTINGS = [{"quantize": "float16"}, {"quantize": "int8"}, {"sparsity": 0.5, "quantize": "int8"},
            {"sparsity": 0.75, "quantize": "int8"}]


def best_within_goal(table: Any) -> Any | None:
    """The smallest-file row of a compression report that loses at most :data:`GOAL_POINTS`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"setting": ["float32", "int8", "pruned"], "size_ratio": [1.0, 3.9, 9.0],
    ...                   "score_change": [0.0, -0.002, -0.2]})
    >>> best_within_goal(t)["setting"]
    'int8'
    """
    ok = table[(table["score_change"] >= -GOAL_POINTS / 100) & (table["setting"] != "float32")]
    return None if ok.empty else ok.loc[ok["size_ratio"].idxmax()]


def verdict(name: str, table: Any) -> str:
    """One line: the best setting within the accuracy budget, and whether it meets the goal."""
    best = best_within_goal(table)
    if best is None:
        return f"{name}: every setting loses more than {GOAL_POINTS:g} point of accuracy"
    met = best["size_ratio"] >= GOAL_RATIO
    return (f"{name}: {best['setting']} {best['size_ratio']:.1f}x smaller on disk, accuracy "
            f"{best['score']:.4f} ({100 * best['score_change']:+.2f} points): "
            + ("meets" if met else "misses") + f" the goal (>= {GOAL_RATIO:g}x smaller, <= {GOAL_POINTS:g} point lost)")


def _linear(ctx: DemoContext, X: Any, y: Any, train_rows: int) -> tuple[Any, str]:
    if ctx.artifacts.get("model") is not None:
        return ctx.artifacts["model"], "linear SGD (the fit step's model)"
    if ctx.artifacts.get("model_path"):
        from daskscale.models import load_model

        return load_model(ctx.artifacts["model_path"]), f"linear SGD (model file {ctx.artifacts['model_path']})"
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xs, ys = np.asarray(X[:train_rows].compute()), np.asarray(y[:train_rows].compute())
    return make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0)).fit(Xs, ys), \
        f"linear SGD (trained here on {train_rows:,} rows)"


def _mlp(X: Any, y: Any, rows: int) -> Any:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Xs, ys = np.asarray(X[:rows].compute()), np.asarray(y[:rows].compute())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few passes are enough for the demo
        return make_pipeline(StandardScaler(), MLPClassifier((MLP_HIDDEN,), max_iter=8, random_state=0)).fit(Xs, ys)


def run(ctx: DemoContext) -> list[str]:
    from daskscale.compress.compressed import compress
    from daskscale.compress.report import report
    from daskscale.storage import load_xy

    X, y = load_xy(ctx.artifacts["store"])
    n = X.shape[0]
    n_eval = min(EVAL_ROWS, n // 4)  # the last rows are held out: no model trains on them
    Xe, ye = X[n - n_eval:], y[n - n_eval:]
    train_rows = min(TRAIN_ROWS, n - n_eval)
    linear, linear_name = _linear(ctx, X, y, train_rows)
    mlp = _mlp(X, y, min(MLP_ROWS, n - n_eval))
    mlp_rep = report(mlp, Xe, SETTINGS, y=ye, workdir=str(ctx.path("compress-mlp")))
    lin_rep = report(linear, Xe, SETTINGS, y=ye, workdir=str(ctx.path("compress-linear")))
    ctx.artifacts["compress_report"] = mlp_rep
    ctx.artifacts["compress_report_linear"] = lin_rep
    ctx.artifacts["compressed_model"] = compress(mlp, quantize="int8")
    lines = [verdict(f"MLP ({MLP_HIDDEN} hidden)", mlp_rep.table), verdict(linear_name, lin_rep.table),
             f"held out: the last {n_eval:,} rows; the MLP trained on {min(MLP_ROWS, n - n_eval):,} rows", "",
             f"MLP ({MLP_HIDDEN} hidden):"]
    lines += str(mlp_rep).splitlines()
    lines += ["", f"{linear_name}: its {X.shape[1] + 1} weights are a small part of its file, so it shrinks little"]
    lines += str(lin_rep).splitlines()
    return lines
