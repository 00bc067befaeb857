"""The package's own errors.

Every error daskscale raises on bad input derives from :class:`DaskscaleError` *and* from the
built-in exception it refines, so ``except ValueError`` keeps working for callers that do
not know about daskscale.

:class:`NotFittedError` also derives from scikit-learn's ``NotFittedError``. Importing that
imports all of scikit-learn (about 2 s), so the class is made on first use (PEP 562
``__getattr__``): ``import daskscale`` and ``daskscale --help`` stay fast.
"""

from __future__ import annotations

from typing import Any


class DaskscaleError(Exception):
    """Base class of every error raised by daskscale."""


class SchemaError(DaskscaleError, ValueError):
    """Data does not have the expected shape, columns, dtype or layout."""


class StoreError(DaskscaleError, ValueError):
    """A path is not a (complete) daskscale store, or a store cannot be written."""


class InputTypeError(DaskscaleError, TypeError):
    """An argument has a type that daskscale does not accept."""


class OptionError(InputTypeError):
    """A trainer was given an option (keyword argument) it does not take; the message names it."""


class UnsafeModelError(DaskscaleError, ValueError):
    """A model file holds types that are not trusted; it was not loaded."""


class ClusterError(DaskscaleError, RuntimeError):
    """A cluster could not be started, reached or described."""


class SourceChangedError(DaskscaleError, RuntimeError):
    """A followed file was truncated, rotated or rewritten: the rows read so far are no longer in it."""


class CorruptChunkError(StoreError):
    """A chunk of a store does not decode to its chunk's size; the message names the chunk.

    Raised inside Dask tasks too: it pickles by its fields, so the client gets the same error.
    """

    def __init__(self, store: str, array: str, chunk: int | tuple[int, ...], rows: tuple[int, int], reason: str):
        self.store, self.array, self.chunk, self.rows, self.reason = str(store), array, chunk, tuple(rows), reason
        super().__init__(f"{store}: array {array!r} chunk {chunk} (rows {rows[0]}:{rows[1]}) is damaged: {reason}. "
                         f"Ingest the data again, or list every bad chunk with `daskscale info --check {store}`")

    def __reduce__(self) -> tuple[Any, tuple]:
        return type(self), (self.store, self.array, self.chunk, self.rows, self.reason)


class DaskscaleWarning(UserWarning):
    """Base class of the warnings daskscale gives."""


class PrecisionWarning(DaskscaleWarning):
    """Converting to float32 lost more than a stated share of a column's spread (see ``ingest``)."""


def _not_fitted_error() -> type:
    from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

    class NotFittedError(DaskscaleError, _SklearnNotFittedError):
        """A model is used before it was fitted (also a scikit-learn ``NotFittedError``)."""

    NotFittedError.__module__, NotFittedError.__qualname__ = __name__, "NotFittedError"
    return NotFittedError


def __getattr__(name: str) -> Any:
    if name == "NotFittedError":
        cls = globals()["NotFittedError"] = _not_fitted_error()  # made once; later look-ups find it here
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
