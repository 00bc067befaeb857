"""Learning curves with and without transfer, and the target data transfer saves.

For growing subsets of the target rows, :func:`learning_curve` fine-tunes the pre-trained
model and, as the baseline, trains the same architecture from scratch with the same step
budget; both are scored on held-out target rows. The reference is the from-scratch model
trained on *all* the target rows (the full-data score); a method "reaches" the goal when it
scores at least ``goal_fraction`` of it. The data saved is the ratio of the rows each needs.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from daskscale.monitor import progress
from daskscale.transfer.finetune import check_features, fine_tune, score, target_source, train_from_scratch
from daskscale.transfer.zoo import resolve_pretrained

__all__ = ["LearningCurve", "learning_curve", "rows_to_reach"]


def rows_to_reach(rows: Sequence[int], scores: Sequence[float], goal: float) -> int | None:
    """The smallest number of rows whose score reaches ``goal`` (``None`` if none does).

    Examples
    --------
    >>> rows_to_reach([10, 20, 40], [0.5, 0.8, 0.9], 0.75)
    20
    """
    return next((int(r) for r, s in zip(rows, scores) if s >= goal), None)


@dataclass(repr=False)
class LearningCurve:
    """Scores with and without transfer per target size; the rows each needs to reach the goal."""

    table: pd.DataFrame
    full_score: float
    n_target_rows: int
    goal: float
    goal_fraction: float | None
    zero_shot: float | None
    rows_needed: dict[str, int | None]
    pretrained: str = ""
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def data_saved(self) -> float | None:
        """Rows from scratch / rows with transfer to reach the goal (scratch's bound: all rows)."""
        t = self.rows_needed.get("transfer")
        s = self.rows_needed.get("scratch") or self.n_target_rows
        return s / t if t else None

    def summary(self) -> str:
        t, s = self.rows_needed.get("transfer"), self.rows_needed.get("scratch")
        s_txt = f"{s}" if s is not None else f"more than {int(self.table['rows'].max())} (all {self.n_target_rows} rows score {self.full_score:.3f})"
        saved = f"{self.data_saved:.1f}x less target data" if self.data_saved else "no saving measured"
        return (f"goal {self.goal:.3f} ({'%.0f%% of ' % (100 * self.goal_fraction) if self.goal_fraction else ''}"
                f"the full-data score {self.full_score:.3f}): with transfer {t if t is not None else 'not reached'} "
                f"rows, from scratch {s_txt}: {saved}")

    def as_dict(self) -> dict[str, Any]:
        return {"pretrained": self.pretrained, "full_score": self.full_score, "n_target_rows": self.n_target_rows,
                "goal": self.goal, "zero_shot": self.zero_shot, "rows_needed": self.rows_needed,
                "data_saved": self.data_saved, "table": self.table.to_dict(orient="records"),
                "seconds": self.seconds, "settings": self.settings}

    def __str__(self) -> str:
        return f"{self.table.to_string(index=False, float_format='%.3f')}\n{self.summary()}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = (f"<p><b>learning curve</b>: {html.escape(self.pretrained)} on {self.n_target_rows} target rows; "
                f"zero-shot {'-' if self.zero_shot is None else f'{self.zero_shot:.3f}'}</p>")
        return head + self.table.to_html(index=False, float_format="%.3f") + f"<p>{html.escape(self.summary())}</p>"

    def plot(self, ax: Any = None) -> Any:
        """Score against target rows (log x), both methods, the goal and the full-data score."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(6, 4))[1]
        ax.plot(self.table["rows"], self.table["transfer"], "o-", label="fine-tuned from pre-trained")
        ax.plot(self.table["rows"], self.table["scratch"], "s--", label="from scratch")
        ax.axhline(self.full_score, color="grey", lw=1, label=f"full data ({self.n_target_rows} rows), scratch")
        ax.axhline(self.goal, color="red", ls=":", lw=1, label=f"goal {self.goal:.3f}")
        if self.zero_shot is not None:
            ax.axhline(self.zero_shot, color="green", ls="-.", lw=1, label="pre-trained, no fine-tuning")
        ax.set_xscale("log")
        ax.set_xlabel("target training rows")
        ax.set_ylabel("held-out score (accuracy)")
        ax.set_title(f"Transfer learning curve: {self.pretrained}")
        ax.legend(fontsize="small", loc="lower right")
        return ax


def learning_curve(pretrained: Any, X: Any, y: Any = None, *, test: Any, test_y: Any = None,
                   sizes: Sequence[int] = (25, 50, 100, 200, 400), goal_fraction: float = 0.9,
                   goal: float | None = None, learning_rate: float = 1e-3, freeze: bool | int = False,
                   new_classes: Sequence[Any] | None = None, epochs: int = 20, min_steps: int = 300,
                   batch_size: int = 32, seed: int = 0) -> LearningCurve:
    """Train with and without transfer on growing target subsets; report the rows each needs.

    Parameters
    ----------
    pretrained : zoo name, model file, Pretrained or estimator
    X, y : the target training data (any input :func:`daskscale.storage.convert.as_data` takes)
    test, test_y : held-out target data that scores every model
    sizes : the subset sizes (first rows of the target; shuffle the target beforehand)
    goal_fraction, goal : the score to reach: ``goal`` if given, else ``goal_fraction`` x the
        full-data score (from scratch on all target rows)
    learning_rate, freeze, new_classes, epochs, min_steps, batch_size, seed
        Passed to :func:`~daskscale.transfer.finetune.fine_tune` and, except ``freeze`` and
        ``new_classes``, to the from-scratch baseline (same budget).

    Examples
    --------
    >>> from daskscale.transfer.tasks import digits_blur
    >>> t = digits_blur()
    >>> lc = learning_curve("digits_mlp", t.X_target, t.y_target, test=t.X_test, test_y=t.y_test,
    ...                     sizes=[50, 100], epochs=10, min_steps=100)
    >>> list(lc.table.columns)[:4]
    ['rows', 'fraction', 'transfer', 'scratch']
    """
    t0 = time.perf_counter()
    pre = resolve_pretrained(pretrained)
    data = target_source(X, y)  # read once: every fit below slices the same source
    check_features(pre, data.data)
    kw = dict(learning_rate=learning_rate, epochs=epochs, min_steps=min_steps, batch_size=batch_size, seed=seed)
    sizes = sorted({min(int(s), data.n_rows) for s in sizes})
    with progress(total=2 * len(sizes) + 1, desc="learning curve", unit="fit") as bar:
        full = score(train_from_scratch(pre, data, classes=new_classes, **kw), test, test_y)
        bar.update()
        rows = []
        for n in sizes:
            tr = score(fine_tune(pre, data, rows=n, freeze=freeze, new_classes=new_classes, **kw), test, test_y)
            bar.update()
            sc = score(train_from_scratch(pre, data, rows=n, classes=new_classes, **kw), test, test_y)
            bar.update()
            rows.append({"rows": n, "fraction": n / data.n_rows, "transfer": tr, "scratch": sc,
                         "transfer_vs_full": tr / full, "scratch_vs_full": sc / full})
    table = pd.DataFrame(rows)
    target = goal if goal is not None else goal_fraction * full
    zero = score(pre.model, test, test_y) if new_classes is None else None
    needed = {m: rows_to_reach(table["rows"], table[m], target) for m in ("transfer", "scratch")}
    return LearningCurve(table, full, data.n_rows, target, None if goal is not None else goal_fraction, zero, needed,
                         pre.name, time.perf_counter() - t0,
                         dict(kw, freeze=freeze, new_classes=list(new_classes) if new_classes is not None else None))
