"""What an :class:`~daskscale.online.OnlineLearner` does when its detector reports drift.

River's ``drift.retrain`` shape: the reaction is a small object that owns the model's
replacement, apart from the loop that scores and trains. ``models`` are fitted in the
learner's feature space (the batches in ``recent`` are already transformed).

- ``"reset"``: a fresh model (clone of the template) trained from the drifting batch on;
- ``"retrain"``: a fresh model trained on the ``recent`` batches kept (the batch that
  triggered the drift included), then continuing;
- ``"background"``: switch to a background model. With a detector that warns (DDM) the
  background model starts at the first warning and is dropped if the warning clears;
  with one that does not (ADWIN, Page-Hinkley) it is restarted every ``window`` batches.
  Without a background model, as ``"reset"``;
- ``None``: record the event only.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from sklearn.base import clone

__all__ = ["REACTIONS", "react", "follow_background"]

REACTIONS = ("reset", "retrain", "background", None)

Fit = Callable[[Any, Any, Any], None]


def react(reaction: str, template: Any, model: Any, background: Any, recent: Sequence[tuple[Any, Any]],
          X: Any, y: Any, fit: Fit, keep: int) -> tuple[Any, Any]:
    """The ``(model, background)`` after a drift at batch ``(X, y)``, which the new model has learned."""
    if reaction == "background" and background is not None:
        fit(background, X, y)
        return background, None
    model = clone(template)
    batches = [*recent, (X, y)] if reaction == "retrain" else [(X, y)]
    for Xb, yb in batches[-max(1, keep):]:
        fit(model, Xb, yb)
    return model, background


def follow_background(background: Any, template: Any, detector: Any, event: str | None, n_batches: int,
                      window: int, X: Any, y: Any, fit: Fit) -> Any:
    """The background model after batch ``(X, y)`` (``reaction="background"``), trained on it."""
    if detector.has_warning:
        if event == "warning" and background is None:
            background = clone(template)
        elif event is None:
            background = None
    elif background is None or n_batches % max(1, window) == 0:
        background = clone(template)
    if background is not None and event != "drift":
        fit(background, X, y)
    return background
