"""The record of an incremental fit: per-block and per-epoch loss, score and rows/s."""

from __future__ import annotations

from typing import Any

__all__ = ["History"]


class History:
    """Training history kept by :class:`daskscale.learn.Incremental` as ``history_``.

    ``blocks``: one dict per trained unit of blocks (epoch, step, blocks, rows, loss,
    rows_per_s, rows_seen); ``epochs``: one dict per epoch (epoch, rows, seconds,
    rows_per_s, loss (mean of the progressive per-block losses), score (validation),
    stopped). Plain lists of dicts, so the history goes into a checkpoint as JSON.

    Examples
    --------
    >>> h = History()
    >>> h.add_epoch(epoch=0, rows=10, seconds=1.0, rows_per_s=10.0, loss=0.5, score=0.8)
    >>> h.best_score, len(h)
    (0.8, 1)
    """

    def __init__(self, blocks: list[dict[str, Any]] | None = None, epochs: list[dict[str, Any]] | None = None):
        self.blocks = list(blocks or [])
        self.epochs = list(epochs or [])

    def add_block(self, **row: Any) -> None:
        self.blocks.append(row)

    def add_epoch(self, **row: Any) -> None:
        self.epochs.append(row)

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.epochs[i]

    @property
    def best_score(self) -> float | None:
        scores = [e["score"] for e in self.epochs if e.get("score") is not None]
        return max(scores) if scores else None

    def as_dict(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "epochs": self.epochs}

    def to_frame(self, level: str = "epochs") -> Any:
        """A pandas DataFrame of the ``"epochs"`` (default) or ``"blocks"`` records."""
        import pandas as pd

        return pd.DataFrame(self.epochs if level == "epochs" else self.blocks)

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        return (f"History({len(self.epochs)} epochs, {len(self.blocks)} block steps, "
                f"last score={last.get('score')}, last loss={last.get('loss')})")

    def _repr_html_(self) -> str:
        cols = ["epoch", "rows", "seconds", "rows_per_s", "loss", "score", "stopped"]
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(e.get(c))}</td>" for c in cols) + "</tr>" for e in self.epochs)
        return (f"<table><caption>Incremental fit: {len(self.epochs)} epochs, "
                f"{len(self.blocks)} block steps</caption><tr>{head}</tr>{body}</table>")

    def plot(self, ax: Any = None, *, title: str = "Learning curve") -> Any:
        """Progressive per-block loss and per-epoch validation score against rows seen."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        xs = [b["rows_seen"] for b in self.blocks if b.get("loss") is not None]
        ls = [b["loss"] for b in self.blocks if b.get("loss") is not None]
        ax.plot(xs, ls, ".-", color="tab:blue", alpha=0.6, label="training loss (per block, before update)")
        ax.set_xlabel("rows seen")
        ax.set_ylabel("loss")
        ax.set_title(title)
        scored = [e for e in self.epochs if e.get("score") is not None]
        if scored:
            ax2 = ax.twinx()
            ax2.plot([e["rows_seen"] for e in scored], [e["score"] for e in scored], "o-", color="tab:orange",
                     label="validation score (per epoch)")
            ax2.set_ylabel("validation score")
            ax2.legend(loc="lower right")
        ax.legend(loc="upper right")
        return ax


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)
