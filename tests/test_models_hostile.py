"""Hostile model files: every one is refused by ``load_model`` and nothing in it runs.

The corpus (``tests/hostile/build.py``) is built at test time into ``tmp_path``; each case
would create its own sentinel file if anything ran it. A separate test proves the callable
cases are really hostile: plain skops, trusting what ``get_untrusted_types`` reports, runs them.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import skops.io as sio
from hostile import CASES, EXECUTING, build_corpus
from hostile.build import _call, _inject, _json, _loss
from sklearn.linear_model import SGDClassifier

from daskscale.errors import UnsafeModelError
from daskscale.models import is_trusted_type, load_model, read_metadata, save_model, untrusted_types


def _wait_for(path, seconds):
    """A payload that starts a process (Popen) writes its sentinel a moment later."""
    end = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.05)
    return path.exists()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {c.name: c for c in build_corpus(tmp_path_factory.mktemp("hostile"))}


@pytest.mark.parametrize("name", CASES)
def test_hostile_file_is_refused_and_never_runs(corpus, name, monkeypatch):
    case = corpus[name]
    if case.syspath is not None:  # the module importlib would import is importable
        monkeypatch.syspath_prepend(str(case.syspath))
    with pytest.raises(UnsafeModelError) as info:
        load_model(case.path)
    message = str(info.value)
    assert str(case.path) in message and "\n" not in message
    assert not _wait_for(case.sentinel, 0.3 if "popen" in name else 0)
    assert "daskscale.__main__" not in sys.modules  # importing it would run the CLI


@pytest.mark.parametrize("name", EXECUTING)
def test_corpus_really_runs_code_under_plain_skops(tmp_path, name, monkeypatch):
    """Guard: the dangerous load only ever sees files and sentinels inside ``tmp_path``."""
    (case,) = build_corpus(tmp_path, only=(name,))
    assert case.path.is_relative_to(tmp_path) and case.sentinel.is_relative_to(tmp_path)
    if case.syspath is not None:
        assert case.syspath.is_relative_to(tmp_path)
        monkeypatch.syspath_prepend(str(case.syspath))
    reported = sio.get_untrusted_types(file=case.path)
    try:
        sio.load(case.path, trusted=reported)
    except Exception:  # noqa: BLE001 - some payloads break the object built after they ran
        pass
    assert _wait_for(case.sentinel, 10), f"{name}: plain skops did not run the payload"


def test_untrusted_types_names_what_is_refused(corpus, tmp_path):
    assert any("builtins.eval" in t for t in untrusted_types(corpus["builtins-eval"].path))
    assert any("numpy.load" in t for t in untrusted_types(corpus["numpy-load-pickle"].path))
    good = save_model(SGDClassifier().fit(np.eye(3), [0, 1, 0]), tmp_path / "good.skops")
    assert untrusted_types(good) == []


def test_metadata_of_a_hostile_container_is_refused(corpus):
    for name in ("zip-bomb-declared-size", "truncated-half", "pickle-renamed", "traversal-dotdot", "empty-file"):
        with pytest.raises(UnsafeModelError, match=str(corpus[name].path)):
            read_metadata(corpus[name].path)


@pytest.mark.parametrize("entry", ["numpy.", "sklearn.", "builtins.*", "numpy.*", "sklearn.linear_model.SGD?",
                                   "builtins", "", "builtins.eval", "os.system", "numpy.load",
                                   "subprocess.check_call", "no_such_module.Thing"])
def test_trusted_takes_exact_class_names_only(corpus, entry):
    with pytest.raises(UnsafeModelError, match="trusted entry"):
        load_model(corpus["builtins-eval"].path, trusted=[entry])
    assert not corpus["builtins-eval"].sentinel.exists()


def test_trusted_string_instead_of_list_is_refused(corpus):
    with pytest.raises(UnsafeModelError, match="list of exact type names"):
        load_model(corpus["builtins-eval"].path, trusted="builtins.eval")


class Custom:
    """A user's own class, stored as one attribute of a model."""

    def __init__(self, k=3):
        self.k = k


def test_trusting_a_class_loads_its_instances_but_never_calls_it(tmp_path):
    m = SGDClassifier().fit(np.eye(3), [0, 1, 0])
    m.extra_ = Custom(5)
    p = save_model(m, tmp_path / "custom.skops")
    name = f"{__name__}.Custom"
    with pytest.raises(UnsafeModelError, match=name):
        load_model(p)
    assert load_model(p, trusted=[name]).extra_.k == 5
    # the same class named where a file would call it: refused even when trusted
    sentinel = tmp_path / "called"
    for node in (_call("subprocess", "Popen", _json(["sh", "-c", f": > {sentinel}"])),
                 _loss("subprocess", "Popen", _json(["sh", "-c", f": > {sentinel}"]))):
        hostile = _inject(p, tmp_path / "call.skops", node)
        with pytest.raises(UnsafeModelError, match="subprocess.Popen"):
            load_model(hostile, trusted=[name, "subprocess.Popen"])
    assert not _wait_for(sentinel, 0.3)


@pytest.mark.parametrize("name, trusted", [
    ("sklearn.linear_model._stochastic_gradient.SGDClassifier", True),
    ("sklearn.neural_network._multilayer_perceptron.MLPClassifier", True),
    ("sklearn.neural_network._stochastic_optimizers.AdamOptimizer", True),
    ("sklearn.linear_model._sgd_fast.Hinge", True),
    ("sklearn._loss._loss.CyHalfBinomialLoss", True),
    ("daskscale.learn.incremental.Incremental", True),
    ("daskscale.learn.history.History", True),
    ("numpy.ndarray", True),
    ("numpy.float64", True),
    ("numpy.random.mtrand.RandomState", True),
    ("scipy.sparse._csr.csr_matrix", True),
    ("builtins.dict", True),
    ("sklearn.linear_model.SGDClassifier", False),  # an alias: a file names a class where it is defined
    ("sklearn.utils.validation.check_array", False),
    ("sklearn.datasets._base.load_iris", False),
    ("sklearn.base", False),
    ("daskscale.models.load_model", False),
    ("daskscale.__main__.main", False),
    ("daskscale.errors.UnsafeModelError", False),
    ("numpy.load", False),
    ("numpy.save", False),
    ("numpy.lib.format.read_array", False),
    ("builtins.eval", False),
    ("builtins.type", False),
    ("builtins.object", False),
    ("os.system", False),
    ("subprocess.Popen", False),
    ("collections.Counter", False),
    ("numpy.", False),
    ("sklearn.", False),
])
def test_trust_is_by_exact_class_name(name, trusted):
    assert is_trusted_type(name) is trusted
