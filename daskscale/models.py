"""Safe model files and checkpoints: nothing runs when a file is loaded.

A daskscale model file is a skops archive (a zip of ``.npy`` arrays and a JSON schema,
never a pickle) with one more member, ``daskscale.json``, holding metadata (features,
classes, scores, training progress). Loading refuses any type outside a trusted list:
scikit-learn, NumPy and SciPy containers, and daskscale's own classes. Writes are atomic,
so a crash while saving leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable

import skops.io as sio

from daskscale.errors import UnsafeModelError
from daskscale.storage.atomic import atomic_file

__all__ = ["save_model", "load_model", "read_metadata", "TRUSTED_PREFIXES", "untrusted_types"]

#: Modules whose types a model file may contain. skops builds these from data; it never
#: unpickles, and a type outside this list makes :func:`load_model` refuse the file.
TRUSTED_PREFIXES: tuple[str, ...] = (
    "sklearn.",
    "daskscale.",
    "numpy.",
    "scipy.sparse.",
    "builtins.",
    "collections.",
)

_META = "daskscale.json"


def save_model(model: Any, path: str | os.PathLike, *, metadata: dict[str, Any] | None = None,
               compression: int = zipfile.ZIP_STORED) -> Path:
    """Write ``model`` and JSON ``metadata`` to ``path`` atomically; return the path.

    ``compression=zipfile.ZIP_DEFLATED`` deflates the archive's members (smaller files for
    int8 / sparse weights, slower to write).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> m = SGDClassifier(random_state=0).fit(np.eye(4), [0, 1, 0, 1])
    >>> p = save_model(m, tempfile.mkdtemp() + "/m.skops", metadata={"score": 1.0})
    >>> type(load_model(p)).__name__, read_metadata(p)["score"]
    ('SGDClassifier', 1.0)
    """
    with atomic_file(path) as tmp:
        sio.dump(model, tmp, compression=compression)
        with zipfile.ZipFile(tmp, "a", compression=compression) as z:
            z.writestr(_META, json.dumps(metadata or {}, default=_json_default))
    return Path(path)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"metadata value of type {type(o).__name__} is not JSON serialisable")


def untrusted_types(path: str | os.PathLike, extra_trusted: Iterable[str] = ()) -> list[str]:
    """Types in the file that are neither in :data:`TRUSTED_PREFIXES` nor ``extra_trusted``."""
    try:
        found = sio.get_untrusted_types(file=str(path))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, ValueError, TypeError) as exc:
        raise UnsafeModelError(f"{path} is not a daskscale model file (a skops archive): {exc}") from None
    extra = set(extra_trusted)
    return [t for t in found if t not in extra and not t.startswith(TRUSTED_PREFIXES)]


def load_model(path: str | os.PathLike, *, trusted: Iterable[str] = ()) -> Any:
    """Load a model saved by :func:`save_model`, refusing untrusted types.

    Raises
    ------
    UnsafeModelError
        If the file is not a skops archive (e.g. a pickle) or holds untrusted types.
    FileNotFoundError
        If ``path`` does not exist.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such model file")
    bad = untrusted_types(p, trusted)
    if bad:
        raise UnsafeModelError(
            f"{p} contains types that are not trusted: {bad}. It was not loaded; if you trust the "
            "file's origin, pass them in trusted=[...]"
        )
    try:
        allowed = sio.get_untrusted_types(file=str(p))
        return sio.load(str(p), trusted=allowed)
    except Exception as exc:  # noqa: BLE001 - skops raises many types on a damaged file
        raise UnsafeModelError(f"{p} could not be loaded as a model file: {exc}") from exc


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a model file (``{}`` if it has none)."""
    try:
        with zipfile.ZipFile(path) as z:
            if _META not in z.namelist():
                return {}
            return json.loads(z.read(_META))
    except zipfile.BadZipFile as exc:
        raise UnsafeModelError(f"{path} is not a daskscale model file: {exc}") from None
