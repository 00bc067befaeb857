"""Adapters: the only modules that reach private APIs of a library or bypass it.

- :mod:`daskscale.adapters.sklearn`: scikit-learn estimator internals (pruning, averaged SGD).
- :mod:`daskscale.adapters.zarr`: zarr chunk files decoded by hand (a measured fast path).
- :mod:`daskscale.adapters.dask`: dask graph layers.
- :mod:`daskscale.adapters.glibc`: malloc thresholds while blocks stream.

Each has a test under ``tests/adapters/`` that fails loudly when its library changes.
"""
