"""Make ITK (ANTs), BLAS and torch honour a job's ``threads``."""

from __future__ import annotations

import os
import sys

from threadpoolctl import threadpool_limits

#: Environment variables read by the thread pools of ITK, OpenMP and the BLAS libraries.
THREAD_VARIABLES = (
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_threads(n_threads: int) -> None:
    """Cap every thread pool of this process (and its children) at ``n_threads``.

    Call it before the heavy work starts: ITK reads its variable when a filter is
    created, and the BLAS libraries through ``threadpoolctl`` at once. torch, when
    already imported, is capped too.

    Parameters
    ----------
    n_threads : int
        Number of threads (>= 1), normally the Snakemake job's ``threads``.
    """
    n_threads = max(1, int(n_threads))
    for name in THREAD_VARIABLES:
        os.environ[name] = str(n_threads)
    threadpool_limits(n_threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n_threads)
