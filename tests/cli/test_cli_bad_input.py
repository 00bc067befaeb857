"""Bad invocations of every verb end in ONE line on stderr, a non-zero exit and no traceback.

A table of bad input over all verbs (missing files, a folder that is not a store, wrong option
values, a model file that is not a model, a store with the wrong number of features for the
model, a damaged chunk, TLS without certificates, an unprotected bind). Each row runs
``daskscale.cli.main`` in this process, joined to the session cluster with ``--scheduler`` when
the verb computes, so no cluster starts; a few rows run the installed ``daskscale`` as a real
process (two of them with a cluster of their own) to prove what a user's terminal shows: one
line, no traceback, no "Compute Failed" block from a worker.

Each row also lists words the line must hold (what was wrong, where), and the line must not
be the command's fallback for bugs ("internal error"): a bad input is reported as such.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from daskscale.cli import main

S = "{sched}"  # placeholder: --scheduler ADDRESS of the session cluster

#: (id, argv, words the one line must hold)
ROWS: list[tuple[str, list[str], list[str]]] = [
    # ingest
    ("ingest-missing-source", ["ingest", "{tmp}/missing.csv", "{tmp}/o1.zarr", S], ["missing.csv"]),
    ("ingest-non-numeric-column", ["ingest", "{bad_csv}", "{tmp}/o2.zarr", "--target", "y", S], ["'b'"]),
    ("ingest-unknown-target", ["ingest", "{good_csv}", "{tmp}/o3.zarr", "--target", "nope", S], ["nope"]),
    ("ingest-into-an-existing-store", ["ingest", "{good_csv}", "{store}", "--target", "y", S], ["already exists"]),
    ("ingest-chunk-rows-not-a-number", ["ingest", "{good_csv}", "{tmp}/o4.zarr", "--chunk-rows", "many", S],
     ["--chunk-rows"]),
    ("ingest-chunk-rows-zero", ["ingest", "{good_csv}", "{tmp}/o5.zarr", "--chunk-rows", "0", S], ["chunk"]),
    ("ingest-categorical-choice", ["ingest", "{good_csv}", "{tmp}/o6.zarr", "--categorical", "maybe", S],
     ["--categorical"]),
    # info
    ("info-missing-store", ["info", "{tmp}/missing.zarr"], ["missing.zarr"]),
    ("info-folder-not-a-store", ["info", "{notastore}"], ["{notastore}"]),
    ("info-temporary-folder", ["info", "{tempcopy}"], ["temporary"]),
    # make-dataset
    ("make-dataset-negative-rows", ["make-dataset", "{tmp}/m1.zarr", "--rows", "-5", S], ["rows"]),
    ("make-dataset-unknown-recipe", ["make-dataset", "{tmp}/m2.zarr", "--recipe", "nope", S], ["nope"]),
    ("make-dataset-unknown-kind", ["make-dataset", "{tmp}/m3.zarr", "--kind", "banana", S], ["--kind"]),
    ("make-dataset-existing-store", ["make-dataset", "{store}", "--rows", "100", S], ["already exists"]),
    # describe
    ("describe-missing-store", ["describe", "{tmp}/missing.zarr", S], ["missing.zarr"]),
    ("describe-folder-not-a-store", ["describe", "{notastore}", S], ["{notastore}"]),
    ("describe-bins-foo", ["describe", "{store}", "--bins", "foo", S], ["--bins", "foo"]),
    ("describe-quantiles-abc", ["describe", "{store}", "--quantiles", "0.5,abc", S], ["--quantiles", "abc"]),
    ("describe-quantile-out-of-range", ["describe", "{store}", "--quantiles", "1.5", S], ["1.5"]),
    ("describe-workers-not-a-number", ["describe", "{store}", "--workers", "abc"], ["--workers"]),
    ("describe-damaged-chunk", ["describe", "{corrupt}", S], ["'X'", "chunk 1", "rows 500:1000", "info --check"]),
    ("describe-no-store-given", ["describe"], ["STORE"]),
    # fit
    ("fit-missing-store", ["fit", "{tmp}/missing.zarr", "--out", "{tmp}/f1.skops", S], ["missing.zarr"]),
    ("fit-folder-not-a-store", ["fit", "{notastore}", "--out", "{tmp}/f2.skops", S], ["{notastore}"]),
    ("fit-unknown-model", ["fit", "{store}", "--model", "nope", "--out", "{tmp}/f3.skops", S], ["nope"]),
    ("fit-epochs-not-a-number", ["fit", "{store}", "--epochs", "abc", "--out", "{tmp}/f4.skops", S], ["--epochs"]),
    ("fit-unknown-strategy", ["fit", "{store}", "--strategy", "banana", "--out", "{tmp}/f5.skops", S],
     ["--strategy"]),
    ("fit-param-without-value", ["fit", "{store}", "--param", "alpha", "--out", "{tmp}/f6.skops", S], ["--param"]),
    ("fit-unknown-option", ["fit", "{store}", "--strategy", "average", "--option", "nonsense=1",
                            "--out", "{tmp}/f7.skops", S], ["nonsense"]),
    ("fit-damaged-chunk", ["fit", "{corrupt}", "--epochs", "1", "--out", "{tmp}/f8.skops", S],
     ["'X'", "chunk 1", "rows 500:1000"]),
    ("fit-no-out", ["fit", "{store}", S], ["--out"]),
    # evaluate
    ("evaluate-not-a-model", ["evaluate", "{notamodel}", "{store}", S], ["{notamodel}"]),
    ("evaluate-wrong-number-of-features", ["evaluate", "{model}", "{narrow}", S], ["3", "5", "feature"]),
    ("evaluate-missing-model", ["evaluate", "{tmp}/missing.skops", "{store}", S], ["missing.skops"]),
    ("evaluate-folder-not-a-store", ["evaluate", "{model}", "{notastore}", S], ["{notastore}"]),
    ("evaluate-damaged-chunk", ["evaluate", "{model}", "{corrupt}", S], ["'X'", "chunk 1"]),
    # predict
    ("predict-wrong-number-of-features", ["predict", "{model}", "{narrow}", "--out", "{tmp}/p1.zarr", S],
     ["3", "5", "feature"]),
    ("predict-not-a-model", ["predict", "{notamodel}", "{store}", "--out", "{tmp}/p2.zarr", S], ["{notamodel}"]),
    ("predict-no-out", ["predict", "{model}", "{store}", S], ["--out"]),
    # plan
    ("plan-folder-not-a-store", ["plan", "{notastore}", S], ["{notastore}"]),
    ("plan-unknown-model", ["plan", "{store}", "--model", "nope", S], ["nope"]),
    ("plan-epochs-not-a-number", ["plan", "{store}", "--epochs", "x", S], ["--epochs"]),
    # stream
    ("stream-missing-source", ["stream", "--source", "{tmp}/missing", "--checkpoint", "{tmp}/ck1", "--no-dashboard"],
     ["--source"]),
    ("stream-unknown-model", ["stream", "--source", "{store}", "--checkpoint", "{tmp}/ck2", "--model", "nope",
                              "--no-dashboard"], ["nope"]),
    ("stream-unknown-drift-detector", ["stream", "--source", "{store}", "--checkpoint", "{tmp}/ck3", "--drift",
                                       "banana", "--no-dashboard"], ["--drift"]),
    ("stream-damaged-chunk", ["stream", "--source", "{corrupt}", "--checkpoint", "{tmp}/ck4", "--no-dashboard"],
     ["'X'", "chunk 1"]),
    # compress
    ("compress-not-a-model", ["compress", "{notamodel}", "--eval", "{store}", S], ["{notamodel}"]),
    ("compress-missing-model", ["compress", "{tmp}/missing.skops", "--eval", "{store}", S], ["missing.skops"]),
    ("compress-prune-above-one", ["compress", "{model}", "--prune", "1.5", "--eval", "{store}", S], ["1.5"]),
    ("compress-eval-not-a-store", ["compress", "{model}", "--eval", "{notastore}", S], ["{notastore}"]),
    ("compress-no-eval", ["compress", "{model}", S], ["--eval"]),
    # transfer
    ("transfer-not-a-model", ["transfer", "{notamodel}", "{store}", S], ["{notamodel}"]),
    ("transfer-missing-pretrained", ["transfer", "{tmp}/missing.skops", "{store}", S], ["missing.skops"]),
    ("transfer-target-not-a-store", ["transfer", "{model}", "{notastore}", S], ["{notastore}"]),
    ("transfer-sizes-not-numbers", ["transfer", "{model}", "{store}", "--curve", "--sizes", "a,b", S], ["--sizes"]),
    # cluster
    ("cluster-describe-tls-without-certificates", ["cluster", "describe", "tls://127.0.0.1:1"],
     ["tls://127.0.0.1:1", "--tls"]),
    ("cluster-describe-tls-folder-without-certificates", ["cluster", "describe", "tls://127.0.0.1:1", "--tls",
                                                          "{notastore}"], ["{notastore}", "ca.pem"]),
    ("cluster-start-all-interfaces-plain-tcp", ["cluster", "start", "--host", "0.0.0.0"],
     ["0.0.0.0", "--tls", "--insecure"]),
    ("cluster-start-dashboard-all-interfaces", ["cluster", "start", "--dashboard", "0.0.0.0:8787"],
     ["0.0.0.0", "dashboard", "--insecure"]),
    ("cluster-hpc-unknown-system", ["cluster", "hpc", "--system", "lsf"], ["--system"]),
    ("cluster-k8s-workers-not-a-number", ["cluster", "k8s", "--workers", "x"], ["--workers"]),
    ("cluster-unknown-subcommand", ["cluster", "explode"], ["explode"]),
    # the command itself
    ("unknown-verb", ["frobnicate"], ["frobnicate"]),
]

#: rows run as a real process too; "own" = the process starts a cluster of its own (--workers 1)
PROCESS_ROWS = {
    "info-missing-store": None,
    "cluster-start-all-interfaces-plain-tcp": None,
    "describe-quantiles-abc": "session",
    "describe-damaged-chunk": "session",
    "fit-damaged-chunk": "own",
    "ingest-non-numeric-column": "own",
}


@pytest.fixture(scope="module")
def paths(tmp_path_factory, client):
    from daskscale.datasets import make_classification

    tmp = tmp_path_factory.mktemp("bad-input")
    store = make_classification(2_000, 5, chunk_rows=500, seed=0, store=tmp / "store.zarr")
    narrow = make_classification(1_000, 3, chunk_rows=500, seed=1, store=tmp / "narrow.zarr")
    corrupt = tmp / "corrupt.zarr"
    shutil.copytree(store, corrupt)
    (corrupt / "X" / "c" / "1" / "0").write_bytes(np.random.default_rng(0).bytes(3_000))
    tempcopy = tmp / ".store.zarr.tmp-0123456789ab"
    shutil.copytree(store, tempcopy)
    (tmp / "notastore").mkdir()
    (tmp / "notastore" / "readme.txt").write_text("just a folder")
    (tmp / "fake.skops").write_text("this is not a model file")
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0], "y": [0, 1, 0]}).to_csv(tmp / "good.csv", index=False)
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["1", "x", "3"], "y": [0, 1, 0]}).to_csv(tmp / "bad.csv", index=False)
    model = tmp / "model.skops"
    main(["fit", str(store), "--epochs", "1", "--out", str(model), "--scheduler", client.scheduler.address])
    assert model.exists()
    return {"tmp": str(tmp), "store": str(store), "narrow": str(narrow), "corrupt": str(corrupt),
            "tempcopy": str(tempcopy), "notastore": str(tmp / "notastore"), "notamodel": str(tmp / "fake.skops"),
            "model": str(model), "good_csv": str(tmp / "good.csv"), "bad_csv": str(tmp / "bad.csv"),
            "sched": client.scheduler.address}


def _argv(argv: list[str], paths: dict[str, str], scheduler: list[str]) -> list[str]:
    out = []
    for a in argv:
        out += scheduler if a == S else [a.format(**paths)]
    return out


def _assert_one_line(code: object, out: str, err: str, words: list[str], paths: dict[str, str]) -> None:
    assert code not in (0, None), (code, out, err)
    lines = err[:-1].split("\n") if err.endswith("\n") else err.split("\n")  # an empty trailing line is fine
    assert err.strip() and len(lines) == 1, err
    assert "Traceback" not in out + err and "Compute Failed" not in out + err, (out, err)
    assert "internal error" not in err, err  # the fallback for bugs: this is bad input, to be named as such
    for w in words:
        assert w.format(**paths) in err, (w, err)


def test_the_table_covers_every_verb():
    from daskscale.cli import COMMANDS

    covered = {argv[0] for _, argv, _ in ROWS}
    assert set(COMMANDS) - {"demo"} <= covered  # demo takes no input to get wrong
    assert len(ROWS) >= 60 and set(PROCESS_ROWS) <= {r[0] for r in ROWS}


@pytest.mark.parametrize("argv,words", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line(paths, capsys, argv, words):
    with pytest.raises(SystemExit) as e:
        main(_argv(argv, paths, ["--scheduler", paths["sched"]]))
    cap = capsys.readouterr()
    _assert_one_line(e.value.code, cap.out, cap.err, words, paths)


@pytest.mark.parametrize("row", sorted(PROCESS_ROWS))
def test_bad_input_is_one_line_in_a_real_process(paths, row, tmp_path):
    (argv, words), = [r[1:] for r in ROWS if r[0] == row]
    cluster = PROCESS_ROWS[row]
    scheduler = ["--scheduler", paths["sched"]] if cluster == "session" else ["--workers", "1",
                                                                              "--memory-limit", "500MiB"]
    exe = Path(sys.executable).with_name("daskscale")
    env = {k: v for k, v in os.environ.items() if k not in ("DASK_SCHEDULER_ADDRESS", "DASKSCALE_DEBUG")}
    p = subprocess.run([str(exe), *_argv(argv, {**paths, "tmp": str(tmp_path)}, scheduler)], capture_output=True,
                       text=True, timeout=400, cwd=tmp_path, env={**env, "DASKSCALE_PROGRESS": "0"})
    _assert_one_line(p.returncode, p.stdout, p.stderr, words, paths)
