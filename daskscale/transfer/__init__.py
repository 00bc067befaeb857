"""Transfer learning: start from a pre-trained model and need less target data.

- :mod:`~daskscale.transfer.zoo`: pre-trained models rebuilt by recipes
  (``daskscale/datasets/data/models/``);
- :func:`fine_tune`: continue a pre-trained model on target data, block by block, optionally
  with frozen layers or a fresh output layer for new classes;
- :class:`FrozenFeatures`: a pre-trained MLP's hidden layers (or a PCA) as a frozen,
  blockwise transformer, with a new head in a Pipeline (:func:`feature_pipeline`);
- :func:`learning_curve`: scores with and without transfer on growing target subsets, and
  the data saved.
"""

from daskscale.transfer.curves import LearningCurve, learning_curve, rows_to_reach
from daskscale.transfer.features import FrozenFeatures, feature_pipeline, pca_features
from daskscale.transfer.finetune import SUPPORTED_KINDS, fine_tune, score, train_from_scratch
from daskscale.transfer.zoo import RECIPES, Pretrained, build, load_pretrained

__all__ = ["fine_tune", "train_from_scratch", "score", "SUPPORTED_KINDS", "FrozenFeatures", "feature_pipeline",
           "pca_features", "learning_curve", "LearningCurve", "rows_to_reach", "load_pretrained", "build",
           "Pretrained", "RECIPES"]
