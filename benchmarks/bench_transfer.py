"""Transfer learning: held-out score with and without transfer at several target sizes.

Two tasks (:mod:`daskscale.transfer.tasks`): ``digits_blur`` (real: the shipped digits, the
``digits_mlp`` zoo model fine-tuned on blurred digits) and ``synthetic_shift`` (the
``synthetic_mlp`` zoo model fine-tuned after a partial concept drift). The baseline, in the
same class, is the same architecture trained from scratch on the same rows with the same
step budget; ``track_score_full`` is from scratch on all the target rows.
``track_rows_needed_*`` is the smallest measured size reaching 90% of the full-data score
(the full target size when none does) and ``track_data_saved`` their ratio.
"""

from __future__ import annotations

from benchmarks.common import scaled

SIZES = [25, 100, 400]
TASKS = {"digits_blur": "digits_mlp", "synthetic_shift": "synthetic_mlp"}


def _curve(task_name: str):
    from daskscale.transfer import learning_curve
    from daskscale.transfer.tasks import get_task

    t = get_task(task_name)
    lc = learning_curve(TASKS[task_name], t.X_target, t.y_target, test=t.X_test, test_y=t.y_test, sizes=SIZES,
                        epochs=scaled(20), min_steps=scaled(300, 10))
    return {"table": lc.table.set_index("rows").to_dict(orient="index"), "full": lc.full_score,
            "needed": {k: v or lc.n_target_rows for k, v in lc.rows_needed.items()},
            "saved": lc.data_saved or 1.0, "zero_shot": lc.zero_shot}


class TransferCurve:
    params = [list(TASKS), SIZES]
    param_names = ["task", "target_rows"]
    timeout = 1200

    def setup_cache(self):
        return {task: _curve(task) for task in TASKS}

    def track_score_transfer(self, curves, task, rows):
        return curves[task]["table"][rows]["transfer"]

    def track_score_scratch(self, curves, task, rows):
        return curves[task]["table"][rows]["scratch"]

    def track_score_full(self, curves, task, rows):
        return curves[task]["full"]

    def track_score_zero_shot(self, curves, task, rows):
        return curves[task]["zero_shot"]

    def track_rows_needed_transfer(self, curves, task, rows):
        return curves[task]["needed"]["transfer"]

    def track_rows_needed_scratch(self, curves, task, rows):
        return curves[task]["needed"]["scratch"]

    def track_data_saved(self, curves, task, rows):
        return curves[task]["saved"]

    track_rows_needed_transfer.unit = "rows"
    track_rows_needed_scratch.unit = "rows"
    track_data_saved.unit = "x"


class FineTuneSpeed:
    """Seconds to fine-tune vs train from scratch on the same rows, same step budget."""

    params = [SIZES]
    param_names = ["target_rows"]

    def setup(self, rows):
        from daskscale.transfer.tasks import digits_blur

        self.t = digits_blur()
        self.kw = dict(rows=rows, epochs=scaled(20), min_steps=scaled(300, 10))

    def time_fine_tune(self, rows):
        from daskscale.transfer import fine_tune

        fine_tune("digits_mlp", self.t.X_target, self.t.y_target, **self.kw)

    def time_from_scratch(self, rows):
        from daskscale.transfer import train_from_scratch

        train_from_scratch("digits_mlp", self.t.X_target, self.t.y_target, **self.kw)
