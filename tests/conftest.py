"""Shared test set-up: JAX on the CPU, no GPU probing, a headless matplotlib.

JAX's persistent compilation cache goes to one temporary folder for the
session (the CLI would otherwise point it under each test's data home), so
tests never write compiled programs outside their temporary space.
"""

import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      tempfile.mkdtemp(prefix="swarmvar-tests-jax-cache-"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
