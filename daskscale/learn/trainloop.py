"""The mini-batch training loop of :class:`daskscale.learn.Incremental`.

It runs wherever the blocks are cheapest to read: inside one task on a worker for a store
(blocks come from zarr straight into that process, nothing is shipped), or on the client for
in-memory and dask inputs. Its whole state is JSON plus the estimator, so a checkpoint is one
:func:`daskscale.models.save_model` call and a resumed run replays the same seeded order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from daskscale.learn.blocks import epoch_units, iter_blocks, mini_batches
from daskscale.learn.history import History
from daskscale.learn.prep import block_loss, block_score, check_block

__all__ = ["train", "new_state", "save_checkpoint", "CHECKPOINT_FILE", "LOSS_ROWS"]

CHECKPOINT_FILE = "checkpoint.skops"
#: rows of each unit scored before training on it (progressive validation), a bounded cost
LOSS_ROWS = 1000


def new_state() -> dict[str, Any]:
    return {"epoch": 0, "unit": 0, "blocks_done": 0, "rows_seen": 0, "best": None, "bad_epochs": 0,
            "stopped": False, "epoch_rows": 0, "epoch_losses": [], "history": History().as_dict()}


def save_checkpoint(est: Any, plan: dict[str, Any], state: dict[str, Any]) -> Path:
    from daskscale.models import save_model

    path = Path(plan["checkpoint"]) / CHECKPOINT_FILE
    return save_model(est, path, metadata={"daskscale_checkpoint": 1, "plan": plan, "state": state})


def _arr(v: Any) -> np.ndarray | None:
    return None if v is None else np.asarray(v)


def _read_unit(it: Any, unit: list[int], reader: Any, plan: dict[str, Any], classes: Any) -> tuple:
    xs, ys = [], []
    for _ in unit:
        i, (X, y) = next(it)
        a, b = reader.rows(i)
        X, y = check_block(np.asarray(X), None if y is None else np.asarray(y),
                           where=f"block {i} (rows {a}-{b})", nan=plan["nan"], classes=classes)
        xs.append(X)
        ys.append(y)
    X = xs[0] if len(xs) == 1 else np.concatenate(xs)
    y = None if ys[0] is None else (ys[0] if len(ys) == 1 else np.concatenate(ys))
    return X, y


def scale_rows(X: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    """Standardise rows with fitted column ``mean`` and ``scale`` (identity when ``None``)."""
    if mean is None:
        return X
    # one copy in the block's own dtype (not float64 temporaries): memory stays ~1 block
    out = np.array(X, dtype=X.dtype if X.dtype.kind == "f" else np.float64)
    out -= mean.astype(out.dtype)
    out /= scale.astype(out.dtype)
    return out


def validate(est: Any, reader: Any, plan: dict[str, Any]) -> float | None:
    """Row-weighted mean of the per-block scores on the held-out blocks (exact for accuracy)."""
    if not plan["val"]:
        return None
    classes, mean, scale = _arr(plan["classes"]), _arr(plan["mean"]), _arr(plan["scale"])
    total, rows = 0.0, 0
    for i, (X, y) in iter_blocks(reader, plan["val"], max_in_flight=plan["max_in_flight"]):
        a, b = reader.rows(i)
        X, y = check_block(np.asarray(X), None if y is None else np.asarray(y),
                           where=f"validation block {i} (rows {a}-{b})", nan=plan["nan"], classes=classes)
        if len(X):
            total += block_score(est, plan["kind"], scale_rows(X, mean, scale), y) * len(X)
            rows += len(X)
    return total / rows if rows else None


def _fit_batch(est: Any, kind: str, X: np.ndarray, y: Any, classes: Any) -> None:
    if kind == "classifier":
        est.partial_fit(X, y, classes=classes)
    elif kind == "regressor":
        est.partial_fit(X, y)
    else:
        est.partial_fit(X)


def train(est: Any, reader: Any, plan: dict[str, Any], state: dict[str, Any], *,
          publish: Callable[..., Any] | None = None, on_unit: Callable[[dict], None] | None = None) -> tuple:
    """Run the epochs of ``plan`` from ``state``; return ``(estimator, state, History)``."""
    kind, seed = plan["kind"], plan["seed"]
    classes, mean, scale = _arr(plan["classes"]), _arr(plan["mean"]), _arr(plan["scale"])
    hist = History(**state["history"])
    every = plan.get("checkpoint_every") or 0
    for epoch in range(state["epoch"], plan["epochs"]):
        if state["stopped"]:
            break
        units = epoch_units(plan["train"], epoch, seed=seed, shuffle=plan["shuffle"], group=plan["group"])
        t0 = time.perf_counter()
        it = iter_blocks(reader, [b for u in units[state["unit"]:] for b in u], max_in_flight=plan["max_in_flight"])
        for ui in range(state["unit"], len(units)):
            unit = units[ui]
            tb = time.perf_counter()
            X, y = _read_unit(it, unit, reader, plan, classes)
            Xs = scale_rows(X, mean, scale)
            rng = np.random.default_rng([0 if seed is None else seed, epoch, unit[0], 1])
            batches = mini_batches(len(Xs), plan["batch_size"], rng if plan["shuffle"] else None)
            loss = None
            if state["rows_seen"] and len(Xs):
                probe = batches[0][:LOSS_ROWS]
                loss = block_loss(est, kind, Xs[probe], None if y is None else y[probe])
            for idx in batches:
                if len(idx):
                    _fit_batch(est, kind, Xs[idx], None if y is None else y[idx], classes)
            dt = max(time.perf_counter() - tb, 1e-9)
            before = state["blocks_done"]
            state.update(unit=ui + 1, blocks_done=before + len(unit), rows_seen=state["rows_seen"] + len(X),
                         epoch_rows=state["epoch_rows"] + len(X))
            if loss is not None:
                state["epoch_losses"].append(loss)
            row = dict(epoch=epoch, step=ui, blocks=list(map(int, unit)), rows=len(X), loss=loss,
                       rows_per_s=len(X) / dt, rows_seen=state["rows_seen"])
            hist.add_block(**row)
            state["history"] = hist.as_dict()
            if publish:
                publish(blocks_done=state["blocks_done"], **row)
            if on_unit:
                on_unit(row)
            if every and plan.get("checkpoint") and state["blocks_done"] // every > before // every:
                save_checkpoint(est, plan, state)
        seconds = time.perf_counter() - t0
        score = validate(est, reader, plan)
        losses = state["epoch_losses"]
        metric = score if score is not None else (-float(np.mean(losses)) if losses else None)
        if metric is not None and (state["best"] is None or metric > state["best"] + plan["tol"]):
            state["best"], state["bad_epochs"] = metric, 0
        else:
            state["bad_epochs"] += 1
        stop = plan["patience"] is not None and state["bad_epochs"] > plan["patience"]
        hist.add_epoch(epoch=epoch, rows=state["epoch_rows"], seconds=seconds,
                       rows_per_s=state["epoch_rows"] / max(seconds, 1e-9),
                       loss=float(np.mean(losses)) if losses else None, score=score,
                       rows_seen=state["rows_seen"], stopped=bool(stop))
        state.update(epoch=epoch + 1, unit=0, epoch_rows=0, epoch_losses=[], stopped=bool(stop),
                     history=hist.as_dict())
        if publish:
            publish(force=True, epoch=epoch, score=score, blocks_done=state["blocks_done"], epoch_done=True,
                    rows_per_s=hist.epochs[-1]["rows_per_s"])
        if on_unit:
            on_unit({"score": score, "epoch_done": True})
        if plan.get("checkpoint"):
            save_checkpoint(est, plan, state)
    return est, state, hist
