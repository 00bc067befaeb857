"""Hostile model files and checkpoints through every CLI verb that loads one.

Each run must exit non-zero with one line on stderr naming the file, no traceback, and
leave the case's sentinel uncreated. A genuine file through the same invocation succeeds,
so a refusal is the loader's doing and not a broken command line.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hostile import CALLABLES, CASES, build_corpus, graft_payloads

from daskscale.cli import main

#: a representative subset for the verbs slower than evaluate
SUBSET = ("builtins-exec", "os-system", "subprocess-popen", "numpy-load-pickle", "functools-reduce",
          "nested-in-pipeline-param", "pickle-member", "zip-bomb-declared-size", "truncated-half", "pickle-renamed")
#: payloads grafted into genuine checkpoints
CHECKPOINT_PAYLOADS = ("builtins-eval", "os-system", "subprocess-run", "numpy-save", "operator-methodcaller",
                       "loss-node-builtins-exec", "dict-key-type-os-system")


def _run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code or 0, out.out, out.err


def _assert_refused(code, err, path, sentinel):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0
    assert len(lines) == 1 and str(path) in lines[0], err
    assert "Traceback" not in err
    time.sleep(0.2)  # a Popen payload would write a moment later
    assert not sentinel.exists()


@pytest.fixture(scope="module")
def env(client, tmp_path_factory):
    from daskscale.datasets import make_classification

    d = tmp_path_factory.mktemp("hostile-cli")
    store = make_classification(1_000, 3, chunk_rows=250, seed=0, store=d / "s.zarr")
    return {"store": store, "scheduler": client.scheduler.address,
            "corpus": {c.name: c for c in build_corpus(d / "corpus")}}


@pytest.mark.parametrize("name", CASES)
def test_evaluate_refuses_every_hostile_file(env, name, capsys, monkeypatch):
    case = env["corpus"][name]
    if case.syspath is not None:
        monkeypatch.syspath_prepend(str(case.syspath))
    code, _, err = _run(["evaluate", case.path, env["store"], "--scheduler", env["scheduler"]], capsys)
    _assert_refused(code, err, case.path, case.sentinel)


def _verb(verb, path, env, tmp_path):
    store, sched = env["store"], env["scheduler"]
    return {"predict": ["predict", path, store, "--out", tmp_path / "p.zarr", "--scheduler", sched],
            "compress": ["compress", path, "--eval", store, "--out", tmp_path / "c.skops", "--scheduler", sched],
            "transfer": ["transfer", path, store, "--epochs", "1", "--min-steps", "1", "--scheduler", sched]}[verb]


@pytest.mark.parametrize("verb", ["predict", "compress", "transfer"])
@pytest.mark.parametrize("name", SUBSET)
def test_model_verbs_refuse_hostile_files(env, verb, name, capsys, tmp_path):
    case = env["corpus"][name]
    code, _, err = _run(_verb(verb, case.path, env, tmp_path), capsys)
    _assert_refused(code, err, case.path, case.sentinel)


@pytest.mark.parametrize("verb", ["evaluate", "predict"])
def test_a_genuine_model_passes_the_same_invocation(env, verb, capsys, tmp_path):
    from daskscale.learn.estimators import make_estimator
    from daskscale.learn.incremental import Incremental
    from daskscale.models import save_model

    model = Incremental(make_estimator("sgd-classifier", random_state=0), progress=False).fit(env["store"])
    path = save_model(model, tmp_path / "good.skops")
    argv = _verb(verb, path, env, tmp_path) if verb != "evaluate" else ["evaluate", path, env["store"], "--scheduler",
                                                                         env["scheduler"]]
    code, out, err = _run(argv, capsys)
    assert code == 0, err


@pytest.fixture(scope="module")
def learner_checkpoint(env, tmp_path_factory):
    """A genuine stream checkpoint (learner.skops) of a 1-batch run through the CLI."""
    d = tmp_path_factory.mktemp("stream-ck")
    try:
        main(["stream", "--source", str(env["store"]), "--checkpoint", str(d), "--max-batches", "1",
              "--no-dashboard"])
    except SystemExit as exc:
        assert not exc.code
    return d / "learner.skops"


def _hostile_checkpoints(genuine: Path, folder: Path, corpus: dict):
    """(hostile file, sentinel) pairs: payloads grafted into the genuine checkpoint, and container attacks."""
    cases = [(c.path, c.sentinel) for c in graft_payloads(genuine, folder, list(CHECKPOINT_PAYLOADS))]
    cases += [(corpus[n].path, corpus[n].sentinel) for n in ("pickle-renamed", "truncated-half", "pickle-member",
                                                             "zip-bomb-declared-size")]
    return cases


def test_stream_resume_refuses_hostile_checkpoints(env, learner_checkpoint, capsys, tmp_path):
    cases = _hostile_checkpoints(learner_checkpoint, tmp_path / "payloads", env["corpus"])
    assert len(cases) == len(CHECKPOINT_PAYLOADS) + 4
    for i, (hostile, sentinel) in enumerate(cases):
        ck = tmp_path / f"ck{i}"
        ck.mkdir()
        shutil.copy(hostile, ck / "learner.skops")
        code, _, err = _run(["stream", "--source", env["store"], "--checkpoint", ck, "--max-batches", "1",
                             "--no-dashboard"], capsys)
        _assert_refused(code, err, ck / "learner.skops", sentinel)
    ck = tmp_path / "genuine"
    ck.mkdir()
    shutil.copy(learner_checkpoint, ck / "learner.skops")
    code, out, err = _run(["stream", "--source", env["store"], "--checkpoint", ck, "--max-batches", "2",
                           "--no-dashboard"], capsys)
    assert code == 0 and "resuming from" in out, err


def test_fit_resume_refuses_hostile_checkpoints(env, capsys, tmp_path):
    fit = ["fit", env["store"], "--epochs", "1", "--checkpoint-every", "1", "--scheduler", env["scheduler"]]
    genuine = tmp_path / "genuine"
    code, _, err = _run([*fit, "--checkpoint", genuine, "--out", tmp_path / "m.skops"], capsys)
    assert code == 0 and (genuine / "checkpoint.skops").exists(), err
    cases = _hostile_checkpoints(genuine / "checkpoint.skops", tmp_path / "payloads", env["corpus"])
    for i, (hostile, sentinel) in enumerate(cases):
        ck = tmp_path / f"ck{i}"
        ck.mkdir()
        shutil.copy(hostile, ck / "checkpoint.skops")
        code, _, err = _run([*fit, "--checkpoint", ck, "--resume", "--out", tmp_path / "out.skops"], capsys)
        _assert_refused(code, err, ck / "checkpoint.skops", sentinel)
    code, _, err = _run([*fit, "--checkpoint", genuine, "--resume", "--out", tmp_path / "m2.skops"], capsys)
    assert code == 0, err


@pytest.mark.parametrize("name", ["builtins-exec", "numpy-load-pickle"])
def test_installed_command_refuses_hostile_file(env, name):
    """The real entry point, in a fresh process (where nothing was imported beforehand)."""
    case = env["corpus"][name]
    exe = Path(sys.executable).parent / "daskscale"
    proc = subprocess.run([str(exe), "evaluate", str(case.path), str(env["store"])], capture_output=True, text=True,
                          timeout=120)
    _assert_refused(proc.returncode, proc.stderr, case.path, case.sentinel)


def test_subset_names_exist():
    assert set(SUBSET) <= set(CASES) and set(CHECKPOINT_PAYLOADS) <= set(CALLABLES)
