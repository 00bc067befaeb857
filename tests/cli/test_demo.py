"""The README's first command: ``daskscale demo`` runs every step end to end (here on few rows)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

from daskscale.demo import STEPS


def test_demo_runs_every_step_and_reports_each(tmp_path):
    out = subprocess.run([sys.executable, "-m", "daskscale", "demo", "--rows", "60000", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = out.stdout.split("== report ==")[1]
    for step in STEPS:  # one report line per step, with its time and its first result line
        title = importlib.import_module(f"daskscale.demo.step_{step}").TITLE
        assert re.search(rf"^  {re.escape(title)} +\d+\.\d s   \S", report, re.M), (title, report)
    assert "skipped" not in report and "Traceback" not in out.stderr
    # a speed claim only with the medians behind it, against the best one-worker path; below 1.2x no "faster"
    claim = re.search(r"data-parallel fit on 2 workers(?: (\d+\.\d\d)x faster than|: no (?:clear )?speed-up over) "
                      r"the mini-batch fit on 1(?: \(.+?\))?, "
                      r"medians of 3 fits \(.+\); held-out accuracy 0\.\d{4} vs 0\.\d{4}", report)
    assert claim, report
    assert claim.group(1) is None or float(claim.group(1)) >= 1.2
    # the compress step leads with the MLP, the model compression is for, beside the linear one
    mlp = re.search(r"^  compress: .+?   MLP \(128 hidden\): (.+?) (\d+\.\d)x smaller on disk, accuracy 0\.\d{4} "
                    r"\(([-+]\d+\.\d\d) points\): (meets|misses) the goal", report, re.M)
    assert mlp, report
    assert (mlp.group(4) == "meets") == (float(mlp.group(2)) >= 4.0) and float(mlp.group(3)) >= -1.0
    assert re.search(r"linear SGD \(the fit step's model\): .+ smaller on disk", out.stdout)
    assert (tmp_path / "parallel-train.zarr").is_dir()  # the workers read a store, not a dask graph


def test_speed_claims_need_the_medians_to_back_them():
    from daskscale.demo.step_parallel import speed_claim

    assert speed_claim(3.0, 1.5, 2) == "data-parallel fit on 2 workers 2.00x faster than the mini-batch fit on 1"
    for t1, tn in ((1.0, 1.1), (1.1, 1.0), (1.19, 1.0)):  # 0.91x, 1.10x, 1.19x: no "faster"
        claim = speed_claim(t1, tn, 2)
        assert "faster" not in claim and "speed-up over the mini-batch fit on 1" in claim


def test_compression_verdict_keeps_to_the_accuracy_budget():
    import pandas as pd

    from daskscale.demo.step_compress import verdict

    t = pd.DataFrame({"setting": ["float32", "int8", "50% pruned + int8", "90% pruned + int8"],
                      "size_ratio": [1.0, 3.8, 5.1, 9.0], "score": [0.9, 0.899, 0.895, 0.70],
                      "score_change": [0.0, -0.001, -0.005, -0.2]})
    line = verdict("MLP", t)  # the 90% setting loses 20 points: not quoted
    assert line.startswith("MLP: 50% pruned + int8 5.1x smaller") and "-0.50 points): meets the goal" in line
    assert "misses the goal" in verdict("linear", t.iloc[:2])
    assert "every setting loses more than 1 point" in verdict("linear", t.iloc[[0, 3]])
