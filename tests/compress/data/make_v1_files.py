"""How the ``v1_*.skops`` files here were made: run with daskscale at commit 01ed3a8, before the
packed format 2 (symmetric int8, one byte array). Kept to prove old files still load and
predict what they predicted when written (the predictions are in each file's metadata).
Not a test, and it does not run with the current code: ``python make_v1_files.py OUT_DIR`` at 01ed3a8.
"""
import sys
import warnings

import numpy as np
from sklearn.neural_network import MLPClassifier
from sklearn.linear_model import Ridge
from daskscale.compress import compress, save_compressed

if __name__ == "__main__":
    out = sys.argv[1]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int) + (X[:, 3] > 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = MLPClassifier((16,), max_iter=300, random_state=0).fit(X, y)
    note = "written by daskscale.compress at commit 01ed3a8 (packed v1: bytes/floats/index arrays, int8 zero points); X = default_rng(0).normal(size=(40, 12)) as float32"
    c = compress(m, quantize="int8", sparsity=0.6, scope="layer")
    print([(q.sparse, q.zero_point) for q in c.layers_])
    save_compressed(c, f"{out}/v1_int8_sparse_mlp.skops", metadata={"note": note,
        "predict_proba": c.predict_proba(X).tolist(), "predict": c.predict(X).tolist()})
    r = Ridge().fit(X, X @ np.arange(12.0))
    c = compress(r, quantize="int8", per_channel=False)
    print([(q.sparse, q.zero_point) for q in c.layers_])
    save_compressed(c, f"{out}/v1_int8_dense_linear.skops", metadata={"note": note, "predict": c.predict(X).tolist()})
