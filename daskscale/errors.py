"""The package's own errors.

Every error daskscale raises on bad input derives from :class:`DaskscaleError` *and* from the
built-in exception it refines, so ``except ValueError`` keeps working for callers that do
not know about daskscale.
"""

from __future__ import annotations

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError


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


class NotFittedError(DaskscaleError, _SklearnNotFittedError):
    """A model is used before it was fitted (also a scikit-learn ``NotFittedError``)."""


class UnsafeModelError(DaskscaleError, ValueError):
    """A model file holds types that are not trusted; it was not loaded."""


class ClusterError(DaskscaleError, RuntimeError):
    """A cluster could not be started, reached or described."""
