"""The one block loop: epochs x units x mini-batches, and the one ``partial_fit`` call.

Every strategy that learns from row blocks runs it: :class:`~daskscale.learn.Incremental`
(one loop in one worker task, or on the client for in-memory data), each replica of
:class:`~daskscale.learn.ParameterAveraging` (one loop per round), pruning and transfer
fine-tuning, grid fits, search rungs, and the online learner (which calls :class:`Step`).

- :class:`TrainPlan` / :class:`TrainState`: what to do and how far it got, as dataclasses that
  serialise to JSON, so a checkpoint is one :func:`daskscale.models.save_model` call and a
  resumed run replays the same seeded order.
- :class:`Hooks`: what a strategy adds: ``publish`` (dashboard metrics), ``on_unit`` (progress
  bar), ``transform`` (frozen layers, in the prefetch thread), ``after_batch`` (pruning masks).
- :class:`Step`: the only place daskscale calls ``partial_fit``. Classes go with the first call
  only; an estimator's ``ValueError`` comes back as a :class:`~daskscale.errors.SchemaError`
  naming the block.

The training thread only trains. Everything else done to a block runs in the prefetch thread
of :func:`~daskscale.engine.prefetch.iter_units` while the previous unit trains: the read and
decompression, the NaN / label check (:func:`~daskscale.learn.prep.check_block`: one ``sum``
proves a block finite, so scikit-learn's own finiteness check is skipped for it), the scaling,
the frozen layers, and for a unit of several blocks (``interleave``) their join and row
permutation. Mini-batches are then contiguous views of the permuted unit, never copies. The row
permutation is skipped when it would be redundant: one ``partial_fit`` call per unit on an
estimator that shuffles the rows of each call itself (``shuffle=True`` of SGD*, Perceptron,
PassiveAggressive*, MLP*).

A unit element is a block index ``i`` or a piece ``(i, part, parts)``: rows
``[n*part//parts, n*(part+1)//parts)`` of block ``i`` (parameter averaging balances its shards
with pieces).
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from daskscale.adapters.glibc import blocks_on_heap
from daskscale.engine.prefetch import epoch_units, iter_units, mini_batches
from daskscale.errors import DaskscaleError, SchemaError
from daskscale.learn.history import History
from daskscale.engine.apply import ScoreState, scale_rows, score_state
from daskscale.learn.prep import block_loss, check_block

__all__ = ["TrainPlan", "TrainState", "Hooks", "Step", "run", "blocks", "validate", "save_checkpoint", "piece", "block_of",
           "CHECKPOINT_FILE", "LOSS_ROWS"]

CHECKPOINT_FILE = "checkpoint.skops"
#: rows of each unit scored before training on it (progressive validation), a bounded cost
LOSS_ROWS = 1000


class _JSON:
    """``as_dict`` / ``from_dict`` of a dataclass of plain values (unknown keys ignored on load)."""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class TrainPlan(_JSON):
    """What a run of the loop does; JSON-serialisable (:meth:`as_dict` / :meth:`from_dict`).

    ``batch_size`` is rows per ``partial_fit`` call everywhere (``None``: one call per unit);
    ``group`` blocks make one unit (``interleave``); ``val`` blocks are scored after every epoch.
    """

    kind: str
    train: list[Any]
    val: list[int] = field(default_factory=list)
    classes: list[Any] | None = None
    mean: list[float] | None = None
    scale: list[float] | None = None
    epochs: int = 1
    batch_size: int | None = None
    shuffle: bool = True
    group: int = 1
    max_in_flight: int = 2
    seed: int | None = None
    nan: str = "raise"
    patience: int | None = None
    tol: float = 1e-4
    checkpoint: str | None = None
    checkpoint_every: int = 0
    progressive: bool = True
    n_blocks: int = 0
    n_features: int = 0
    n_rows: int = 0
    features: list[str] | None = None


@dataclass
class TrainState(_JSON):
    """How far a run got; JSON-serialisable. ``fitted``: ``partial_fit`` was called already."""

    epoch: int = 0
    unit: int = 0
    blocks_done: int = 0
    rows_seen: int = 0
    best: float | None = None
    bad_epochs: int = 0
    stopped: bool = False
    epoch_rows: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    history: dict[str, Any] = field(default_factory=lambda: History().as_dict())
    fitted: bool = False


@dataclass
class Hooks:
    """What a strategy adds to the loop (all optional). ``after_batch(est)`` returning ``True``
    ends the run after that batch (``state.stopped``)."""

    publish: Callable[..., Any] | None = None
    on_unit: Callable[[dict], None] | None = None
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    after_batch: Callable[[Any], bool | None] | None = None


class Step:
    """The one ``partial_fit`` call of daskscale: ``step(X, y, where)`` trains ``est`` on one batch.

    ``classes`` go with the first call only (``fitted=False``); ``fitted=None`` asks the
    estimator. A ``ValueError`` of the estimator is re-raised as a :class:`SchemaError` starting
    with ``where`` (the block and its rows). ``after`` runs after every call (pruning masks);
    when it returns ``True``, :attr:`done` is set (the loop then stops).

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> step = Step(SGDClassifier(random_state=0), "classifier", classes=[0, 1])
    >>> step(np.array([[0.0], [1.0]]), np.array([0, 1]), where="block 0").fitted
    True
    """

    def __init__(self, est: Any, kind: str, *, classes: Any = None, fitted: bool | None = False,
                 after: Callable[[Any], None] | None = None):
        self.est, self.kind, self.after = est, kind, after
        self.classes = None if classes is None else np.asarray(classes)
        self.fitted = _is_fitted(est) if fitted is None else fitted
        self.done = False

    def __call__(self, X: np.ndarray, y: Any = None, where: str = "a batch", **kw: Any) -> "Step":
        est = self.est
        try:
            if self.kind == "classifier" and not self.fitted and self.classes is not None:
                est.partial_fit(X, y, classes=self.classes, **kw)
            elif self.kind in ("classifier", "regressor"):
                est.partial_fit(X, y, **kw)
            else:
                est.partial_fit(X, **kw)
        except DaskscaleError:
            raise
        except ValueError as e:
            raise SchemaError(f"{where}: {e}") from e
        self.fitted = True
        if self.after is not None and self.after(est):
            self.done = True
        return self


def _is_fitted(est: Any) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
        return True
    except (NotFittedError, TypeError):
        return False


def save_checkpoint(est: Any, plan: TrainPlan, state: TrainState) -> Path:
    from daskscale.models import save_model

    path = Path(plan.checkpoint) / CHECKPOINT_FILE
    return save_model(est, path, metadata={"daskscale_checkpoint": 1, "plan": plan.as_dict(),
                                           "state": state.as_dict()})


def _arr(v: Any) -> np.ndarray | None:
    return None if v is None else np.asarray(v)


def piece(n: int, part: int, parts: int) -> tuple[int, int]:
    """Rows ``[a, b)`` of piece ``part`` of ``parts`` of an ``n``-row block (sizes differ by at most one)."""
    return n * part // parts, n * (part + 1) // parts


def _self_shuffling(est: Any) -> bool:
    """Whether ``partial_fit`` permutes the rows of each call itself."""
    try:
        return est.get_params(deep=False).get("shuffle") is True
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: permute ourselves, to be safe
        return False


def _unit_rng(seed: int | None, epoch: int, first_block: int) -> np.random.Generator:
    return np.random.default_rng([0 if seed is None else seed, epoch, first_block, 1])


def _permute(X: np.ndarray, y: Any, perm: np.ndarray) -> tuple[np.ndarray, Any]:
    # ``take`` along rows copies whole rows: about 2x faster than fancy indexing ``X[perm]``
    return np.take(X, perm, axis=0), (None if y is None else np.take(y, perm, axis=0))


def _assume_finite(finite: bool) -> Any:
    import sklearn

    return sklearn.config_context(assume_finite=True) if finite else nullcontext()


def block_of(b: Any) -> int:
    """The block of a unit element: a block index ``i``, or a piece ``(i, part, parts)`` of block ``i``."""
    return int(b if isinstance(b, (int, np.integer)) else b[0])


def _cut(reader: Any, b: Any, block: tuple) -> tuple[str, np.ndarray, Any]:
    """``(where, X, y)`` of unit element ``b`` (a block or a piece of one) from its block."""
    X, y = block
    first = reader.rows(block_of(b))[0]
    if isinstance(b, (int, np.integer)):
        return f"block {b} (rows {first}-{first + len(X)})", X, y
    i, part, parts = b
    a, e = piece(len(X), part, parts)
    return (f"block {i} part {part + 1} of {parts} (rows {first + a}-{first + e})", X[a:e],
            None if y is None else y[a:e])


class _Prepared:
    """The prefetch thread's work on a block and a unit: check, scale, freeze, permute, join."""

    def __init__(self, reader: Any, plan: TrainPlan, hooks: Hooks, permuted: Callable[[int], bool], epoch: int):
        self.reader, self.plan, self.hooks, self.permuted, self.epoch = reader, plan, hooks, permuted, epoch
        self.classes, self.mean, self.scale = _arr(plan.classes), _arr(plan.mean), _arr(plan.scale)

    def block(self, b: Any, block: tuple) -> tuple:
        where, X, y = _cut(self.reader, b, block)
        X, y, finite = check_block(X, y, where=where, nan=self.plan.nan, classes=self.classes)
        X = scale_rows(X, self.mean, self.scale)
        if self.hooks.transform is not None:
            X = self.hooks.transform(X)
        if self.plan.group == 1 and self.permuted(len(X)):
            X, y = _permute(X, y, _unit_rng(self.plan.seed, self.epoch, block_of(b)).permutation(len(X)))
        return where, X, y, finite

    def join(self, unit: list, parts: list[tuple]) -> tuple:
        where, X, y, finite = parts[0]
        if len(parts) > 1:  # interleave: the rows of several blocks permuted as one unit
            where = "blocks " + ", ".join(str(block_of(b)) for b in unit)
            X = np.concatenate([p[1] for p in parts])
            y = None if y is None else np.concatenate([p[2] for p in parts])
            finite = all(p[3] for p in parts)
            if self.permuted(len(X)):
                X, y = _permute(X, y, _unit_rng(self.plan.seed, self.epoch, block_of(unit[0])).permutation(len(X)))
        return where, X, y, finite


def _units(plan: TrainPlan, epoch: int) -> list[list[Any]]:
    if not plan.shuffle and plan.group == 1:  # also for pieces, which are not plain indices
        return [[b] for b in plan.train]
    return epoch_units(plan.train, epoch, seed=plan.seed, shuffle=plan.shuffle, group=plan.group)


def blocks(reader: Any, order: Iterable[Any], plan: TrainPlan, hooks: Hooks | None = None) -> Any:
    """``(where, X, y, finite)`` of each block of ``order``, checked and scaled, read ahead (no permutation)."""
    prep = _Prepared(reader, plan, hooks or Hooks(), lambda n: False, 0)
    return (u for _, u in iter_units(reader, [[b] for b in order], max_in_flight=plan.max_in_flight,
                                     prepare=prep.block, join=prep.join))


def validate(est: Any, reader: Any, plan: TrainPlan, hooks: Hooks | None = None) -> float | None:
    """The score on the held-out blocks ``plan.val``, pooled over their rows."""
    if not plan.val:
        return None
    state = ScoreState(plan.kind)
    with blocks_on_heap():
        for _, X, y, finite in blocks(reader, plan.val, plan, hooks):
            with _assume_finite(finite):
                state += score_state(est, plan.kind, X, y)  # an empty block adds the empty state
    return state.value()


def run(est: Any, reader: Any, plan: TrainPlan, state: TrainState | None = None,
        hooks: Hooks | None = None) -> tuple[Any, TrainState, History]:
    """Run the epochs of ``plan`` from ``state``; return ``(estimator, state, History)``."""
    with blocks_on_heap():
        return _Loop(est, reader, plan, state or TrainState(), hooks or Hooks()).run()


class _Loop:
    def __init__(self, est: Any, reader: Any, plan: TrainPlan, state: TrainState, hooks: Hooks):
        self.est, self.reader, self.plan, self.state, self.hooks = est, reader, plan, state, hooks
        self.hist = History(**state.history)
        self.step = Step(est, plan.kind, classes=plan.classes, fitted=state.fitted, after=hooks.after_batch)
        own_shuffle = _self_shuffling(est)

        def permuted(n_rows: int) -> bool:
            one_call = not plan.batch_size or plan.batch_size >= n_rows
            return plan.shuffle and not (one_call and own_shuffle)

        self.permuted = permuted

    def run(self) -> tuple[Any, TrainState, History]:
        plan, state = self.plan, self.state
        for epoch in range(state.epoch, plan.epochs):
            if state.stopped:
                break
            self._epoch(epoch)
            if self.step.done:
                state.stopped = True
        return self.est, state, self.hist

    def _epoch(self, epoch: int) -> None:
        plan, state, hooks = self.plan, self.state, self.hooks
        units = _units(plan, epoch)
        prep = _Prepared(self.reader, plan, hooks, self.permuted, epoch)
        t0 = time.perf_counter()
        it = iter_units(self.reader, units[state.unit:], max_in_flight=plan.max_in_flight, prepare=prep.block,
                        join=prep.join)
        for ui in range(state.unit, len(units)):
            tb = time.perf_counter()
            where, X, y, finite = next(it)[1]
            n = len(X)
            loss = self._train_unit(where, X, y, finite)
            X = y = None  # free the unit before the next one is taken: memory stays bounded
            self._record(epoch, ui, units[ui], n, loss, time.perf_counter() - tb)
            if self.step.done:
                break
        it.close()  # the reader lets go of the last unit before validation and the next epoch
        self._end_epoch(epoch, time.perf_counter() - t0)

    def _train_unit(self, where: str, X: np.ndarray, y: Any, finite: bool) -> float | None:
        plan, n, loss = self.plan, len(X), None
        with _assume_finite(finite):
            if plan.progressive and self.state.rows_seen and n:
                # rows spread over the unit, copied contiguous (a strided view is slow in BLAS)
                probe = slice(0, n, max(1, n // LOSS_ROWS))
                loss = block_loss(self.est, plan.kind, np.ascontiguousarray(X[probe][:LOSS_ROWS]),
                                  None if y is None else y[probe][:LOSS_ROWS])
            for rows in mini_batches(n, plan.batch_size):
                if rows.stop > rows.start and not self.step.done:
                    self.step(X[rows], None if y is None else y[rows], where)
        self.state.fitted = self.step.fitted
        return loss

    def _record(self, epoch: int, ui: int, unit: list, n: int, loss: float | None, dt: float) -> None:
        plan, state, hooks = self.plan, self.state, self.hooks
        before = state.blocks_done
        state.unit, state.blocks_done = ui + 1, before + len(unit)
        state.rows_seen += n
        state.epoch_rows += n
        if loss is not None:
            state.epoch_losses.append(loss)
        row = dict(epoch=epoch, step=ui, blocks=[block_of(b) for b in unit], rows=n, loss=loss,
                   rows_per_s=n / max(dt, 1e-9), rows_seen=state.rows_seen)
        self.hist.add_block(**row)
        if hooks.publish:
            hooks.publish(blocks_done=state.blocks_done, blocks_total=plan.epochs * len(plan.train),
                          epochs_total=plan.epochs, **row)
        if hooks.on_unit:
            hooks.on_unit(row)
        every = plan.checkpoint_every
        if every and plan.checkpoint and state.blocks_done // every > before // every:
            state.history = self.hist.as_dict()
            save_checkpoint(self.est, plan, state)

    def _end_epoch(self, epoch: int, seconds: float) -> None:
        plan, state, hooks = self.plan, self.state, self.hooks
        score = validate(self.est, self.reader, plan, hooks)
        losses = state.epoch_losses
        metric = score if score is not None else (-float(np.mean(losses)) if losses else None)
        if metric is not None and (state.best is None or metric > state.best + plan.tol):
            state.best, state.bad_epochs = metric, 0
        else:
            state.bad_epochs += 1
        stop = plan.patience is not None and state.bad_epochs > plan.patience
        self.hist.add_epoch(epoch=epoch, rows=state.epoch_rows, seconds=seconds,
                            rows_per_s=state.epoch_rows / max(seconds, 1e-9),
                            loss=float(np.mean(losses)) if losses else None, score=score,
                            rows_seen=state.rows_seen, stopped=bool(stop))
        state.epoch, state.unit, state.epoch_rows, state.epoch_losses = epoch + 1, 0, 0, []
        state.stopped, state.history = bool(stop), self.hist.as_dict()
        if hooks.publish:
            hooks.publish(force=True, epoch=epoch, score=score, blocks_done=state.blocks_done, epoch_done=True,
                          rows_per_s=self.hist.epochs[-1]["rows_per_s"])
        if hooks.on_unit:
            hooks.on_unit({"score": score, "epoch_done": True})
        if plan.checkpoint:
            save_checkpoint(self.est, plan, state)
