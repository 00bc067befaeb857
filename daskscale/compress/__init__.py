"""Model compression: magnitude / structured pruning, float16 and int8 quantization, a report.

>>> from daskscale.compress import compress, magnitude_prune, report   # doctest: +SKIP
"""

from daskscale.compress.compressed import CompressedClassifier, CompressedRegressor, compress
from daskscale.compress.io import file_size, save_compressed
from daskscale.compress.prune import (SUPPORTED, fine_tune, magnitude_prune, prune_ensemble, prune_gradually,
                                      prune_neurons, sparsity_of, sparsity_schedule)
from daskscale.compress.quantize import QTensor, qmatmul, quantize

__all__ = ["CompressedClassifier", "CompressedRegressor", "compress", "save_compressed", "file_size",
           "SUPPORTED", "fine_tune", "magnitude_prune", "prune_ensemble", "prune_gradually", "prune_neurons",
           "sparsity_of", "sparsity_schedule",
           "QTensor", "qmatmul", "quantize", "report", "CompressionReport"]


def __getattr__(name: str):
    # report pulls in pandas/matplotlib; import it only when asked for
    if name in ("report", "CompressionReport"):
        from daskscale.compress import report as _r

        return getattr(_r, name)
    raise AttributeError(name)
