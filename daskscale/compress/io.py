"""Saving compressed models: the safe model format, with its zip members deflated.

:func:`daskscale.models.save_model` writes a skops archive whose members are stored
uncompressed; for a small model the JSON schema is then a large share of the file. A
compressed model is written with ``save_model`` and the archive is then rewritten with
DEFLATE (atomically), which any zip reader, and so :func:`daskscale.models.load_model`,
reads as before.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from daskscale.models import save_model

__all__ = ["save_compressed", "file_size"]


def save_compressed(model: Any, path: str | os.PathLike, *, metadata: dict[str, Any] | None = None) -> Path:
    """Save ``model`` with :func:`daskscale.models.save_model`, zip members deflated.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> from daskscale.compress import compress
    >>> from daskscale.models import load_model
    >>> m = SGDClassifier(random_state=0).fit(np.eye(4), [0, 1, 0, 1])
    >>> p = save_compressed(compress(m, quantize="int8"), tempfile.mkdtemp() + "/m.skops")
    >>> load_model(p).predict(np.eye(4)).tolist()
    [0, 1, 0, 1]
    """
    return save_model(model, path, metadata=metadata, compression=zipfile.ZIP_DEFLATED)


def file_size(model: Any, path: str | os.PathLike) -> int:
    """Bytes on disk of ``model`` saved by :func:`save_compressed` at ``path``."""
    return save_compressed(model, path).stat().st_size
