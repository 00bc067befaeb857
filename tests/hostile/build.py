"""Build hostile model files: each would create its own sentinel file if anything ran it.

Callable payloads are skops nodes written into the ``schema.json`` of a real daskscale
model file (what :func:`daskscale.models.save_model` writes), so each hostile file is a
genuine archive with a genuine estimator, metadata included, plus one poisoned node. The
other cases attack the zip container itself. Every payload only creates ``Hostile.sentinel``
(inside the folder given to :func:`build_corpus`), so the corpus is harmless to build and,
where a test proves it really is hostile, to run.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shlex
import struct
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

Node = dict[str, Any]


@dataclass(frozen=True)
class Hostile:
    """One hostile file: ``executes`` if plain skops, trusting what it reports, runs it."""

    name: str
    path: Path
    sentinel: Path
    executes: bool
    syspath: Path | None = None


# ----------------------------------------------------------------- skops nodes, by hand
def _json(v: Any) -> Node:
    return {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(v),
            "is_json": True}


def _type(module: str, name: str) -> Node:
    return {"__class__": name, "__module__": module, "__loader__": "TypeNode"}


def _seq(kind: str, items: list[Node]) -> Node:
    return {"__class__": kind, "__module__": "builtins", "__loader__": f"{kind.capitalize()}Node", "content": items}


def _dict(items: dict[str, Node], key_type: tuple[str, str] = ("builtins", "str")) -> Node:
    return {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode", "content": items,
            "key_types": _seq("list", [_type(*key_type) for _ in items])}


def _func(module: str, name: str) -> Node:
    return {"__class__": name, "__module__": module, "__loader__": "FunctionNode"}


def _call(module: str, name: str, *args: Node) -> Node:
    """``module.name(*args)`` at load time (skops' ConstructorFromReduceNode)."""
    return {"__class__": name, "__module__": module, "__loader__": "ConstructorFromReduceNode",
            "content": _seq("tuple", list(args))}


def _operator(kind: str, *args: Node) -> Node:
    return {"__class__": kind, "__module__": "operator", "__loader__": "OperatorFuncNode",
            "attrs": _seq("tuple", list(args))}


def _partial(func: Node, *args: Node) -> Node:
    return {"__class__": "partial", "__module__": "functools", "__loader__": "PartialNode",
            "content": {"func": func, "args": _seq("tuple", list(args)), "kwds": _dict({}), "namespace": _json(None)}}


def _loss(module: str, name: str, *args: Node) -> Node:
    """skops' LossNode calls its own type with the file's arguments."""
    return {"__class__": name, "__module__": module, "__loader__": "LossNode",
            "__reduce__": {"args": _seq("tuple", list(args))}, "content": _dict({})}


class _Unpickled:
    """Pickles as ``os.system(command)``: whoever unpickles it runs the command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _py(sentinel: Path) -> str:
    return f"open({str(sentinel)!r}, 'w').close()"


def _sh(sentinel: Path) -> str:
    return f": > {shlex.quote(str(sentinel))}"


# ------------------------------------------------------------ payloads (callable cases)
# name -> (payload factory (sentinel, folder) -> (node, sys.path entry or None), sentinel suffix)
Payload = Callable[[Path, Path], tuple[Node, Path | None]]


def _import_module(s: Path, d: Path) -> tuple[Node, Path]:
    pkg = d / "pydir"
    pkg.mkdir(exist_ok=True)
    mod = f"hostile_{uuid.uuid4().hex}"
    (pkg / f"{mod}.py").write_text(_py(s) + "\n")
    return _call("importlib", "import_module", _json(mod)), pkg


def _numpy_load(s: Path, d: Path) -> tuple[Node, None]:
    pkl = d / f"{s.name}.pkl"
    pkl.write_bytes(pickle.dumps(_Unpickled(_sh(s))))
    return _call("numpy", "load", _json(str(pkl)), _json(None), _json(True)), None


_OS = _type("posixpath", "os")  # skops' TypeNode resolves any attribute: here the os module itself

CALLABLES: dict[str, tuple[Payload, str]] = {
    "builtins-eval": (lambda s, d: (_call("builtins", "eval", _json(_py(s))), None), ""),
    "builtins-exec": (lambda s, d: (_call("builtins", "exec", _json(_py(s))), None), ""),
    "builtins-open": (lambda s, d: (_call("builtins", "open", _json(str(s)), _json("w")), None), ""),
    "os-system": (lambda s, d: (_call("os", "system", _json(_sh(s))), None), ""),
    "subprocess-run": (lambda s, d: (_call("subprocess", "run", _seq("list", [_json("sh"), _json("-c"),
                                                                               _json(_sh(s))])), None), ""),
    "subprocess-popen": (lambda s, d: (_call("subprocess", "Popen", _seq("list", [_json("sh"), _json("-c"),
                                                                                   _json(_sh(s))])), None), ""),
    "importlib-import-module": (_import_module, ""),
    "operator-call": (lambda s, d: (_call("operator", "call", _func("builtins", "exec"), _json(_py(s))), None), ""),
    "operator-methodcaller": (lambda s, d: (_call("operator", "call", _operator("methodcaller", _json("system"),
                                                                                 _json(_sh(s))), _OS), None), ""),
    "operator-attrgetter": (lambda s, d: (_call("operator", "call", _call("operator", "call", _operator(
        "attrgetter", _json("system")), _OS), _json(_sh(s))), None), ""),
    "functools-partial": (lambda s, d: (_call("operator", "call", _partial(_func("builtins", "exec"),
                                                                           _json(_py(s)))), None), ""),
    "functools-reduce": (lambda s, d: (_call("functools", "reduce", _func("builtins", "exec"),
                                             _seq("list", [_dict({})]), _json(_py(s))), None), ""),
    "numpy-load-pickle": (_numpy_load, ""),
    "numpy-save": (lambda s, d: (_call("numpy", "save", _json(str(s)), _seq("list", [_json(1), _json(2)])), None),
                   ".npy"),
    "loss-node-builtins-exec": (lambda s, d: (_loss("builtins", "exec", _json(_py(s))), None), ""),
    "dict-key-type-os-system": (lambda s, d: (_dict({_sh(s): _json(1)}, key_type=("os", "system")), None), ""),
}
#: payloads refused although plain skops would not run them on their own: still never allowed
INERT: dict[str, Callable[[], Node]] = {
    "function-node-builtins-eval": lambda: _func("builtins", "eval"),
    "partial-node-os-system": lambda: _partial(_func("os", "system"), _json("true")),
    "operator-node-methodcaller": lambda: _operator("methodcaller", _json("system"), _json("true")),
    "object-node-subprocess-popen": lambda: {"__class__": "Popen", "__module__": "subprocess",
                                             "__loader__": "ObjectNode", "content": _dict({"args": _json("true")})},
    "method-node-estimator-fit": lambda: {"__class__": "SGDClassifier",
                                          "__module__": "sklearn.linear_model._stochastic_gradient",
                                          "__loader__": "MethodNode", "content": {"func": "fit", "obj": {
                                              "__class__": "SGDClassifier",
                                              "__module__": "sklearn.linear_model._stochastic_gradient",
                                              "__loader__": "ObjectNode", "content": _dict({})}}},
    "unknown-node-kind": lambda: {"__class__": "dict", "__module__": "builtins", "__loader__": "EvilNode"},
    "malformed-node": lambda: {"__class__": 7, "__module__": "builtins", "__loader__": "ObjectNode"},
    "dunder-module-import": lambda: {"__class__": "main", "__module__": "daskscale.__main__",
                                     "__loader__": "ObjectNode"},
    "numpy-alias-not-a-class": lambda: {"__class__": "load", "__module__": "numpy", "__loader__": "ObjectNode"},
}


# --------------------------------------------------------------------- archive surgery
def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def _attrs(schema: Node) -> Node:
    """The DictNode of the root object's attributes (or the root dict of a checkpoint)."""
    return schema["content"] if schema["__loader__"] == "ObjectNode" else schema


def _with_schema(base: Path, out: Path, schema: Node) -> Path:
    members = _members(base)
    members["schema.json"] = json.dumps(schema).encode()
    return _write(out, list(members.items()))


def _inject(base: Path, out: Path, node: Node) -> Path:
    """``base`` with ``node`` as one more attribute of its root object (built on load)."""
    schema = json.loads(_members(base)["schema.json"])
    attrs = _attrs(schema)
    attrs["content"]["hostile"] = node
    attrs["key_types"]["content"].append(_type("builtins", "str"))
    return _with_schema(base, out, schema)


def _find(node: Any, key: str) -> Node | None:
    """The first DictNode value stored under ``key`` anywhere in ``node``."""
    stack = [node]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            content = o.get("content")
            if isinstance(content, dict) and key in content:
                return content[key]
            stack.extend(o.values())
        elif isinstance(o, list):
            stack.extend(o)
    return None


def graft_payloads(base: Path, folder: Path, names: list[str] | None = None) -> list[Hostile]:
    """Hostile copies of the genuine model file ``base`` (metadata kept), one per callable payload.

    Used for checkpoints, so that a hostile ``learner.skops`` / ``checkpoint.skops`` passes
    every check of its metadata and reaches the loader.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in list(CALLABLES) if names is None else names:
        make, suffix = CALLABLES[name]
        sentinel = folder / f"{name}.pwned{suffix}"
        node, syspath = make(sentinel, folder)
        out.append(Hostile(name, _inject(base, folder / f"{name}.skops", node), sentinel, True, syspath))
    return out


# ------------------------------------------------------------------------ the corpus
def _legit(folder: Path) -> tuple[Path, Path]:
    """A genuine SGD model file and a genuine Pipeline file (class_weight dict deep inside)."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from daskscale.models import save_model

    X = np.random.default_rng(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    sgd = SGDClassifier(random_state=0).fit(X, y)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("sgd", SGDClassifier(class_weight={0: 1.0, 1: 2.0}, random_state=0))]).fit(X, y)
    meta = {"features": ["a", "b", "c"]}
    return (save_model(sgd, folder / "legit-sgd.skops", metadata=meta),
            save_model(pipe, folder / "legit-pipeline.skops", metadata=meta))


def _patch_declared_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size ``member`` declares (local header and central directory)."""
    buf = bytearray(data)
    name = member.encode()
    i = buf.find(b"PK\x01\x02")
    while i >= 0:
        n = struct.unpack_from("<H", buf, i + 28)[0]
        if bytes(buf[i + 46:i + 46 + n]) == name:
            struct.pack_into("<I", buf, i + 24, size)
            struct.pack_into("<I", buf, struct.unpack_from("<I", buf, i + 42)[0] + 22, size)
        i = buf.find(b"PK\x01\x02", i + 4)
    return bytes(buf)


CONTAINERS = ("pickle-member", "object-array-npy-member", "traversal-dotdot", "traversal-absolute", "traversal-nested",
              "zip-bomb-ratio", "zip-bomb-declared-size", "truncated-half", "truncated-tail", "corrupt-crc",
              "duplicate-schema", "missing-schema", "deep-json", "pickle-renamed", "empty-file")
#: every case of :func:`build_corpus`, by name (for test parametrisation)
CASES = (*CALLABLES, "nested-in-pipeline-param", *INERT, *CONTAINERS)
EXECUTING = (*CALLABLES, "nested-in-pipeline-param")


def _containers(sgd: Path, folder: Path) -> dict[str, Callable[[Path, Path], None]]:
    """name -> writer(out path, sentinel): attacks on the zip container."""
    base = _members(sgd)
    data = sgd.read_bytes()
    evil = lambda s: pickle.dumps(_Unpickled(_sh(s)))  # noqa: E731
    a_npy = next(n for n in base if n.endswith(".npy"))

    def object_npy(out: Path, s: Path) -> None:
        buf = io.BytesIO()
        arr = np.empty(1, dtype=object)
        arr[0] = _Unpickled(_sh(s))
        np.save(buf, arr, allow_pickle=True)
        _write(out, [(n, buf.getvalue() if n == a_npy else b) for n, b in base.items()])

    def bomb_ratio(out: Path, s: Path) -> None:
        _write(out, [*base.items()])
        with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("9999.npy", bytes(64 * 2**20))

    def bomb_declared(out: Path, s: Path) -> None:
        _write(out, [*base.items(), ("8888.npy", bytes(2**20))], compression=zipfile.ZIP_DEFLATED)
        out.write_bytes(_patch_declared_size(out.read_bytes(), "8888.npy", 3 * 2**30))

    def corrupt_crc(out: Path, s: Path) -> None:
        i = data.find(b'"protocol"')
        out.write_bytes(data[:i + 1] + b"X" + data[i + 2:])

    def duplicate(out: Path, s: Path) -> None:
        schema = json.loads(base["schema.json"])
        _attrs(schema)["content"]["hostile"] = _call("builtins", "exec", _json(_py(s)))
        _attrs(schema)["key_types"]["content"].append(_type("builtins", "str"))
        _write(out, [*base.items(), ("schema.json", json.dumps(schema).encode())])

    def deep_json(out: Path, s: Path) -> None:
        _write(out, [(n, b"[" * 200_000 + b"]" * 200_000 if n == "schema.json" else b) for n, b in base.items()])

    return {
        "pickle-member": lambda out, s: _write(out, [*base.items(), ("model.pkl", evil(s))]),
        "object-array-npy-member": object_npy,
        "traversal-dotdot": lambda out, s: _write(out, [*base.items(), ("../escape.npy", evil(s))]),
        "traversal-absolute": lambda out, s: _write(out, [*base.items(), ("/tmp/escape.npy", evil(s))]),
        "traversal-nested": lambda out, s: _write(out, [*base.items(), ("a/../../escape.npy", evil(s))]),
        "zip-bomb-ratio": bomb_ratio,
        "zip-bomb-declared-size": bomb_declared,
        "truncated-half": lambda out, s: out.write_bytes(data[: len(data) // 2]),
        "truncated-tail": lambda out, s: out.write_bytes(data[:-30]),
        "corrupt-crc": corrupt_crc,
        "duplicate-schema": duplicate,
        "missing-schema": lambda out, s: _write(out, [(n, b) for n, b in base.items() if n != "schema.json"]),
        "deep-json": deep_json,
        "pickle-renamed": lambda out, s: out.write_bytes(evil(s)),
        "empty-file": lambda out, s: out.write_bytes(b""),
    }


def build_corpus(folder: Path, only: tuple[str, ...] = CASES) -> list[Hostile]:
    """Write the hostile files named in ``only`` (all by default) into ``folder``; each has its own sentinel."""
    import warnings

    folder.mkdir(parents=True, exist_ok=True)
    sgd, pipe = _legit(folder)
    cases = graft_payloads(sgd, folder, [n for n in CALLABLES if n in only])
    if "nested-in-pipeline-param" in only:
        schema = json.loads(_members(pipe)["schema.json"])
        deep = _find(schema, "class_weight")  # Pipeline > steps > ("sgd", SGDClassifier) > params > class_weight
        sentinel = folder / "nested-in-pipeline-param.pwned"
        deep["content"]["1"] = _call("builtins", "exec", _json(_py(sentinel)))
        cases.append(Hostile("nested-in-pipeline-param", _with_schema(pipe, folder / "nested.skops", schema),
                             sentinel, True))
    for name in (n for n in INERT if n in only):
        cases.append(Hostile(name, _inject(sgd, folder / f"{name}.skops", INERT[name]()), folder / f"{name}.pwned",
                             False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns on the duplicate member, on purpose
        writers = _containers(sgd, folder)
        assert tuple(writers) == CONTAINERS
        for name in (n for n in CONTAINERS if n in only):
            out, sentinel = folder / f"{name}.skops", folder / f"{name}.pwned"
            writers[name](out, sentinel)
            cases.append(Hostile(name, out, sentinel, False))
    return cases
