"""Safe model files and checkpoints: nothing runs when a file is loaded.

A daskscale model file is a skops archive (a zip of ``.npy`` arrays and a JSON schema,
never a pickle) with one more member, ``daskscale.json``, holding metadata (features,
classes, scores, training progress). Writes are atomic, so a crash while saving leaves the
previous file intact.

Loading trusts nothing by module: before skops builds anything,

1. the container is checked: only ``schema.json``, ``daskscale.json`` and array members
   (``.npy``; ``.npz`` for sparse matrices, checked the same way inside), no names with
   folders, no duplicates, no pickled object arrays, a bounded uncompressed size and no
   member compressed beyond :data:`MAX_RATIO` (zip bombs);
2. every node of the schema is checked: its kind must build data or an instance
   (:data:`SAFE_NODES`; never a function, a method, a ``partial``, an ``operator`` object or
   a constructor called with arguments from the file), and its type must be one exact name
   from :func:`is_trusted_type`: builtin and NumPy/SciPy data types, and classes defined in
   ``sklearn``/``daskscale`` that are estimators, SGD losses or MLP optimisers, or one of
   :data:`SAFE_CLASSES`.

Every path that reads a model or a checkpoint (the API, the CLI verbs, the resume of
``Incremental`` and of ``OnlineLearner``) goes through :func:`load_model`.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import skops.io as sio

from daskscale.adapters.sklearn import TRUSTED_BASES
from daskscale.errors import UnsafeModelError
from daskscale.storage.atomic import atomic_file

__all__ = ["save_model", "load_model", "read_metadata", "untrusted_types", "is_trusted_type", "SAFE_NODES",
           "SAFE_CLASSES", "MAX_UNCOMPRESSED_BYTES", "MAX_RATIO"]

#: skops node kinds a model file may hold. Absent on purpose: FunctionNode, MethodNode,
#: PartialNode and OperatorFuncNode (they yield callables), ConstructorFromReduceNode (calls a
#: name from the file with arguments from the file), TreeNode (unchecked node indices), and
#: kinds daskscale never writes (bytes, slices, defaultdicts, generators, masked arrays).
SAFE_NODES = frozenset({"DictNode", "ListNode", "TupleNode", "SetNode", "JsonNode", "TypeNode", "NdArrayNode",
                        "DTypeNode", "SparseMatrixNode", "RandomStateNode", "ObjectNode", "LossNode", "CachedNode"})
#: The node kinds for which ``load_model(trusted=[...])`` may add a class: an instance restored
#: from its attributes. Kinds that *call* their type (TypeNode on dict keys, LossNode,
#: NdArrayNode on scalars, DictNode) accept only the built-in trusted types.
_EXTRA_OK = frozenset({"ObjectNode", "CachedNode"})

#: Classes, besides estimators, losses and optimisers, that models daskscale saves carry
#: (found by saving every kind: tests/test_models.py::test_every_model_kind_round_trips).
SAFE_CLASSES = frozenset({"daskscale.learn.history.History", "daskscale.learn.planner.Plan"})
_CLASS_ROOTS = ("sklearn", "daskscale")

#: Refuse an archive that would expand past this many bytes (all members together).
MAX_UNCOMPRESSED_BYTES = 2 * 2**30
#: Refuse a member over 1 MiB that expands more than this many times (DEFLATE of real
#: weights stays far below; a zip bomb is near DEFLATE's limit of about 1000).
MAX_RATIO = 200
_RATIO_FLOOR = 2**20

_META = "daskscale.json"
_SCHEMA = "schema.json"
_ARRAY_MEMBER = re.compile(r"[A-Za-z0-9_-]{1,128}\.(npy|npz)")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


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
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"metadata value of type {type(o).__name__} is not JSON serialisable")


# ---------------------------------------------------------------------------------- trust
def _name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


@functools.cache
def _data_types() -> frozenset[str]:
    """Exact names of the builtin, NumPy and SciPy data types a model's arrays and params use."""
    import collections

    import scipy.sparse as sp

    types: set[type] = {dict, list, tuple, set, frozenset, str, int, float, complex, bool, bytes, type(None),
                        collections.OrderedDict, np.ndarray, np.dtype, np.random.RandomState}
    types.update(t for t in np.sctypeDict.values() if isinstance(t, type))
    sparse_bases = tuple(b for b in (getattr(sp, "spmatrix", None), getattr(sp, "sparray", None)) if b is not None)
    types.update(t for t in vars(sp).values() if isinstance(t, type) and issubclass(t, sparse_bases))
    return frozenset(_name(t) for t in types)


def _resolve(name: str) -> Any:
    """The object ``name`` refers to, importing only modules under sklearn / daskscale."""
    module, _, attr = name.rpartition(".")
    parts = name.split(".")
    if parts[0] not in _CLASS_ROOTS or any(p.startswith("__") for p in parts):
        return None  # never import e.g. daskscale.__main__, which runs the CLI
    try:
        return getattr(importlib.import_module(module), attr, None)
    except Exception:  # noqa: BLE001 - an unimportable module names nothing we trust
        return None


@functools.cache
def _safe_bases() -> tuple[type, ...]:
    return tuple(b for b in map(_resolve, TRUSTED_BASES) if isinstance(b, type))


@functools.lru_cache(maxsize=4096)
def is_trusted_type(name: str) -> bool:
    """True if a model file may contain an object of the type called exactly ``name``.

    Examples
    --------
    >>> is_trusted_type("sklearn.linear_model._stochastic_gradient.SGDClassifier")
    True
    >>> is_trusted_type("numpy.float64"), is_trusted_type("numpy.load"), is_trusted_type("builtins.eval")
    (True, False, False)
    """
    if name in _data_types():
        return True
    if not _DOTTED.fullmatch(name):
        return False
    obj = _resolve(name)
    if not isinstance(obj, type) or _name(obj) != name:  # a class, under its own name (no alias)
        return False
    return name in SAFE_CLASSES or issubclass(obj, _safe_bases())


def _exact_names(trusted: Iterable[str]) -> frozenset[str]:
    """Validate ``trusted=``: exact dotted names of classes in imported modules, never prefixes."""
    if isinstance(trusted, str):
        raise UnsafeModelError(f"trusted= takes a list of exact type names, not the string {trusted!r}")
    out = set()
    for t in trusted:
        if not isinstance(t, str) or not _DOTTED.fullmatch(t):
            raise UnsafeModelError(f"trusted entry {t!r} is not an exact dotted type name (such as "
                                   "'mypackage.models.MyEstimator'): module prefixes and wildcards are not accepted")
        module, _, attr = t.rpartition(".")
        owner = sys.modules.get(module)
        obj = getattr(owner, attr, None) if owner is not None else _resolve(t)
        if not isinstance(obj, type):
            raise UnsafeModelError(f"trusted entry {t!r} is not a class of an imported module: only classes can be "
                                   "trusted, never functions; import the module that defines it first")
        out.add(t)
    return frozenset(out)


def _audit(schema: Any, extra: frozenset[str]) -> tuple[set[str], list[str]]:
    """(every type name of the schema's nodes, the refused ones with the reason)."""
    names: set[str] = set()
    refused: dict[str, str] = {}
    stack = [schema]
    while stack:  # iterative: a deeply nested hostile schema cannot exhaust the stack
        o = stack.pop()
        if isinstance(o, list):
            stack.extend(o)
            continue
        if not isinstance(o, dict):
            continue
        stack.extend(o.values())
        if "__loader__" not in o:
            continue
        kind, module, cls = o.get("__loader__"), o.get("__module__"), o.get("__class__")
        name = f"{module}.{cls}"
        names.add(name)
        if not all(isinstance(v, str) for v in (kind, module, cls)):
            refused[repr(name)] = "malformed node"
        elif kind not in SAFE_NODES:
            refused[name] = f"{kind}: a function, method or call, which a model file never holds"
        elif not (is_trusted_type(name) or (kind in _EXTRA_OK and name in extra)):
            refused[name] = "untrusted type"
    return names, [f"{n} ({why})" for n, why in sorted(refused.items())]


# ------------------------------------------------------------------------------ container
def _check_npy(p: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse an array member whose header is not plain ``.npy`` or declares a pickled dtype."""
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            _, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    if dtype.hasobject:
        raise UnsafeModelError(f"{p}: member {info.filename!r} is a pickled object array; a model file holds "
                               "plain arrays only. It was not loaded")


def _check_members(p: Path, z: zipfile.ZipFile, allowed: re.Pattern, budget: list[int]) -> None:
    """Names, sizes and array headers of every member of ``z`` (``budget``: bytes left)."""
    seen: set[str] = set()
    for info in z.infolist():
        name = info.filename
        if name in seen:
            raise UnsafeModelError(f"{p}: member {name!r} appears twice; it was not loaded")
        seen.add(name)
        if not allowed.fullmatch(name):
            raise UnsafeModelError(f"{p}: member {name!r} is not part of a model file (only {_SCHEMA}, {_META} and "
                                   ".npy/.npz arrays, without folders); it was not loaded")
        if info.flag_bits & 0x1:
            raise UnsafeModelError(f"{p}: member {name!r} is encrypted; it was not loaded")
        budget[0] -= info.file_size
        if budget[0] < 0:
            raise UnsafeModelError(f"{p} expands to more than {MAX_UNCOMPRESSED_BYTES:,} bytes (a zip bomb?); "
                                   "it was not loaded")
        if info.file_size > _RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise UnsafeModelError(f"{p}: member {name!r} expands {info.file_size:,} bytes from "
                                   f"{info.compress_size:,} (a zip bomb?); it was not loaded")
        if name.endswith(".npy"):
            _check_npy(p, z, info)
        elif name.endswith(".npz"):  # a sparse matrix: a zip of .npy arrays, checked alike
            with zipfile.ZipFile(io.BytesIO(z.read(info))) as inner:
                _check_members(p, inner, re.compile(r"[A-Za-z0-9_]{1,64}\.npy"), budget)


_FORMAT_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, KeyError, TypeError,
                  RuntimeError, NotImplementedError, RecursionError, UnicodeDecodeError)


def _open(path: str | os.PathLike) -> tuple[Path, bytes, zipfile.ZipFile]:
    """Read ``path`` once (no later swap can change what is checked) and check its container."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such model file")
    if p.stat().st_size > MAX_UNCOMPRESSED_BYTES:
        raise UnsafeModelError(f"{p} is larger than {MAX_UNCOMPRESSED_BYTES:,} bytes; it was not loaded")
    data = p.read_bytes()
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        _check_members(p, z, re.compile(rf"{re.escape(_SCHEMA)}|{re.escape(_META)}|{_ARRAY_MEMBER.pattern}"),
                       [MAX_UNCOMPRESSED_BYTES])
    except UnsafeModelError:
        raise
    except _FORMAT_ERRORS as exc:
        raise UnsafeModelError(f"{p} is not a daskscale model file (a complete skops zip archive; empty, truncated "
                               f"or another format such as a pickle): {_one_line(exc)}") from None
    return p, data, z


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _schema(p: Path, z: zipfile.ZipFile) -> Any:
    try:
        return json.loads(z.read(_SCHEMA))
    except _FORMAT_ERRORS as exc:
        raise UnsafeModelError(f"{p} is not a daskscale model file (its {_SCHEMA} is missing or unreadable): "
                               f"{_one_line(exc)}") from None


# ---------------------------------------------------------------------------------- public
def untrusted_types(path: str | os.PathLike, extra_trusted: Iterable[str] = ()) -> list[str]:
    """The types (and node kinds) in the file that :func:`load_model` would refuse.

    Raises :class:`UnsafeModelError` if the file is not a sound model archive at all.
    """
    p, _, z = _open(path)
    return _audit(_schema(p, z), _exact_names(extra_trusted))[1]


def load_model(path: str | os.PathLike, *, trusted: Iterable[str] = ()) -> Any:
    """Load a model saved by :func:`save_model`; nothing in the file is ever run.

    Parameters
    ----------
    path : the model file.
    trusted : exact dotted names of further classes (e.g. your own estimator,
        ``"mypackage.models.MyEstimator"``) whose instances the file may hold. Each must be a
        class of an already imported module; prefixes, wildcards and functions are refused.

    Raises
    ------
    UnsafeModelError
        If the file is not a sound skops archive (a pickle, a truncated or oversized zip,
        unexpected members), or holds a function, a call, or a type that is not trusted.
    FileNotFoundError
        If ``path`` does not exist.
    """
    extra = _exact_names(trusted)
    p, data, z = _open(path)
    names, refused = _audit(_schema(p, z), extra)
    if refused:
        raise UnsafeModelError(f"{p} holds what a model file must not: {'; '.join(refused)}. It was not loaded; "
                               "a class you trust can be passed as load_model(path, trusted=['exact.ClassName'])")
    try:
        return sio.loads(data, trusted=sorted(names))
    except Exception as exc:  # noqa: BLE001 - skops and the arrays raise many types on a damaged file
        raise UnsafeModelError(f"{p} could not be loaded as a model file: {_one_line(exc)}") from exc


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON metadata of a model file (``{}`` if it has none); the container is checked first."""
    p, _, z = _open(path)
    if _META not in z.namelist():
        return {}
    try:
        meta = json.loads(z.read(_META))
    except _FORMAT_ERRORS as exc:
        raise UnsafeModelError(f"{p}: its metadata {_META} is unreadable: {_one_line(exc)}") from None
    if not isinstance(meta, dict):
        raise UnsafeModelError(f"{p}: its metadata {_META} is not a JSON object")
    return meta
