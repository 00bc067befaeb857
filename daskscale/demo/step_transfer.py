"""Demo step: fine-tune a zoo model on a small target task and report the target data saved."""

from __future__ import annotations

from daskscale.demo.context import DemoContext
from daskscale.transfer import learning_curve, load_pretrained
from daskscale.transfer.tasks import digits_blur

TITLE = "transfer: fine-tune a pre-trained model"


def run(ctx: DemoContext) -> list[str]:
    pre = load_pretrained("digits_mlp")
    task = digits_blur()
    train, test = task.write_target(ctx.workdir)
    ctx.artifacts["transfer_target"] = train
    lc = learning_curve(pre, train, test=test, sizes=[25, 100, 400], epochs=8, min_steps=150)
    t100 = lc.table.set_index("rows").loc[100]
    saved = f"{lc.data_saved:.0f}x less target data" if lc.data_saved else "no saving measured"
    return [
        f"{saved} to reach {lc.goal:.3f} (90% of the full-data score {lc.full_score:.3f}): "
        f"{lc.rows_needed['transfer']} rows fine-tuned vs {lc.rows_needed['scratch'] or '> 400'} from scratch",
        f"pre-trained {pre.name}: {pre.metadata['source_task']}; target: {task.description}",
        f"with 100 target rows: fine-tuned {t100['transfer']:.3f}, from scratch {t100['scratch']:.3f}, "
        f"pre-trained as is {lc.zero_shot:.3f}",
    ]
