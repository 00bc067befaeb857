"""A small zoo of pre-trained models, each rebuilt by a recipe kept in this file.

Each recipe names its source task (:mod:`daskscale.transfer.tasks`), the estimator and the
seed; ``python -m daskscale.transfer.zoo build NAME`` (or ``all``) trains it on the source
task and writes ``daskscale/datasets/data/models/NAME.skops`` (package data) through
:func:`daskscale.models.save_model` with metadata: features, classes, source task, held-out
score, and the recipe itself. ``python -m daskscale.transfer.zoo list`` prints the zoo.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import sklearn
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from daskscale.datasets.real import datasets_dir
from daskscale.errors import DaskscaleError, InputTypeError
from daskscale.models import load_model, read_metadata, save_model
from daskscale.transfer.tasks import get_task

__all__ = ["Recipe", "RECIPES", "Pretrained", "models_dir", "build", "load_pretrained", "resolve_pretrained",
           "trained_model"]


@dataclass(frozen=True)
class Recipe:
    """How a zoo model is made: source task, estimator factory ``make(seed)``, seed."""

    task: str
    make: Callable[[int], BaseEstimator]
    seed: int
    description: str
    task_kwargs: dict[str, Any] = field(default_factory=dict)


def _digits_mlp(seed: int) -> Pipeline:
    # Pixels are 0-16; clip keeps an unseen brighter pixel in the range the MLP was trained on.
    return Pipeline([("scale", MinMaxScaler(clip=True)),
                     ("mlp", MLPClassifier((64,), max_iter=300, random_state=seed))])


def _synthetic_mlp(seed: int) -> Pipeline:
    return Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier((32,), max_iter=30, random_state=seed))])


RECIPES: dict[str, Recipe] = {
    "digits_mlp": Recipe("digits_blur", _digits_mlp, 0,
                         "MLP (64 hidden) on 900 original digits (digits.csv), 10 classes"),
    "digits_0_4_mlp": Recipe("digits_new_classes", _digits_mlp, 0,
                             "MLP (64 hidden) on digits 0-4 (digits.csv), for new-class transfer to 5-9"),
    "synthetic_mlp": Recipe("synthetic_shift", _synthetic_mlp, 0,
                            "MLP (32 hidden) on make_classification(20000 x 20, seed=3)"),
}


@dataclass
class Pretrained:
    """A pre-trained model with its metadata (and file, when it came from one)."""

    model: Any
    metadata: dict[str, Any]
    path: Path | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", type(self.model).__name__))

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in self.metadata.items()
                       if k not in ("features", "recipe"))
        return f"<table><caption>pre-trained model {self.name}</caption>{rows}</table>"


def models_dir() -> Path:
    """``daskscale/datasets/data/models/`` inside the package: where the zoo lives."""
    return datasets_dir() / "models"


def build(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Train the zoo model ``name`` from its recipe and save it; return the file path.

    Examples
    --------
    >>> import tempfile
    >>> p = build("digits_0_4_mlp", tempfile.mkdtemp())
    >>> meta = read_metadata(p)
    >>> meta["classes"], meta["score"] > 0.9
    ([0, 1, 2, 3, 4], True)
    """
    if name not in RECIPES:
        raise DaskscaleError(f"unknown zoo model {name!r}; the zoo has {sorted(RECIPES)}")
    recipe = RECIPES[name]
    task = get_task(recipe.task, **recipe.task_kwargs)
    X, y = task.X_source, task.y_source
    held = max(1, len(X) // 5)  # the last fifth of the source rows scores the model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the recipes cap iterations to stay small and fast
        model = recipe.make(recipe.seed).fit(X[:-held], y[:-held])
    score = float(model.score(X[-held:], y[-held:]))
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    meta = {
        "name": name,
        "kind": type(final).__name__,
        "features": task.feature_names,
        "n_features": len(task.feature_names),
        "classes": [int(c) for c in final.classes_],
        "source_task": recipe.description,
        "task": recipe.task,
        "task_description": task.description,
        "score": round(score, 4),
        "score_metric": "accuracy on the last 20% of the source rows",
        "n_train_rows": int(len(X) - held),
        "hidden_layer_sizes": list(getattr(final, "hidden_layer_sizes", ())),
        "description": recipe.description,
        "recipe": {"command": f"python -m daskscale.transfer.zoo build {name}", "task": recipe.task,
                   "task_kwargs": recipe.task_kwargs, "seed": recipe.seed, "estimator": repr(model)},
        "sklearn_version": sklearn.__version__,
    }
    out = Path(directory) if directory is not None else models_dir()
    out.mkdir(parents=True, exist_ok=True)
    return save_model(model, out / f"{name}.skops", metadata=meta)


def load_pretrained(name: str | os.PathLike, *, directory: str | os.PathLike | None = None) -> Pretrained:
    """Load a zoo model by name (or a model file by path) with its metadata.

    Examples
    --------
    >>> pre = load_pretrained("digits_mlp")
    >>> pre.metadata["kind"], pre.metadata["n_features"], len(pre.metadata["classes"])
    ('MLPClassifier', 64, 10)
    """
    p = Path(name)
    if p.suffix != ".skops":
        p = (Path(directory) if directory is not None else models_dir()) / f"{name}.skops"
    if not p.exists():
        hint = (f"build it with `python -m daskscale.transfer.zoo build {name}`" if str(name) in RECIPES
                else f"the zoo has {sorted(RECIPES)}")
        raise DaskscaleError(f"pre-trained model {p} does not exist; {hint}")
    return Pretrained(trained_model(load_model(p)), read_metadata(p), p)


def trained_model(model: Any) -> Any:
    """The plain model a trainer saved by ``daskscale fit`` learned, ready to fine-tune.

    ``Incremental`` gives its scaler and estimator as a Pipeline, ``ParameterAveraging`` its
    averaged estimator (:func:`daskscale.compress.unwrap.plain_model`); a strategy whose model
    cannot continue training (exact, feature-sharded, ovr, ensemble) is refused, saying why.
    """
    from daskscale.compress.unwrap import plain_model
    from daskscale.transfer.finetune import SUPPORTED_KINDS

    plain = plain_model(model)
    final = plain.steps[-1][1] if isinstance(plain, Pipeline) else plain
    if plain is not model and not isinstance(final, SUPPORTED_KINDS):
        raise InputTypeError(f"cannot fine-tune the {type(model).__name__}: fine-tuning continues one SGD or MLP "
                             f"model with partial_fit, and its weights make a {type(final).__name__}; fit with "
                             "--strategy incremental or average for one")
    return plain


def resolve_pretrained(obj: Any) -> Pretrained:
    """Accept a :class:`Pretrained`, a zoo name, a model file path or a fitted estimator."""
    if isinstance(obj, Pretrained):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return load_pretrained(obj)
    if isinstance(obj, BaseEstimator):
        return Pretrained(trained_model(obj), {})
    raise InputTypeError(f"pretrained must be a zoo name, a model file, a Pretrained or a fitted estimator, "
                         f"not {type(obj).__name__}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m daskscale.transfer.zoo", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train a zoo model from its recipe")
    b.add_argument("name", choices=sorted(RECIPES) + ["all"])
    b.add_argument("--out", default=None, help="folder (default: daskscale/datasets/data/models)")
    sub.add_parser("list", help="list the zoo")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for name, r in RECIPES.items():
            p = models_dir() / f"{name}.skops"
            score = read_metadata(p).get("score") if p.exists() else "not built"
            print(f"{name:16s} {r.description}  (score {score})")
        return 0
    for name in sorted(RECIPES) if args.name == "all" else [args.name]:
        path = build(name, args.out)
        meta = read_metadata(path)
        print(f"{path}  {path.stat().st_size / 1024:.0f} KiB  score {meta['score']}  classes {meta['classes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
