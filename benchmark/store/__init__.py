"""The results store: one directory per run, published whole, never overwritten by another attempt.

- :mod:`~msabench.store.records`: what a run directory holds and how it is read (``status.json``,
  ``results.csv``; every run under a root).
- :mod:`~msabench.store.attempts`: how it comes to be there (staging directories, locks, publishing, resume
  points, the check that a root is fit to be shared).

The names below are the store's API (``from msabench import store``).
"""

from __future__ import annotations

from msabench.store.attempts import (
    ATTEMPT_LOCK,
    RESULTS_LOCK,
    RESUME_FILE,
    STAGING_DIR,
    Attempt,
    archive,
    check_shared_root,
    locked,
    read_resume,
    remove_stale_staging,
    staging_dirs,
    write_resume,
)
from msabench.store.records import (
    RESULT_COLUMNS,
    RESULTS_FILE,
    STATUS_FILE,
    find_run_dirs,
    read_results,
    read_run,
    read_status,
    run_statuses,
    write_results,
    write_status,
)

__all__ = [
    "ATTEMPT_LOCK",
    "RESULTS_FILE",
    "RESULTS_LOCK",
    "RESULT_COLUMNS",
    "RESUME_FILE",
    "STAGING_DIR",
    "STATUS_FILE",
    "Attempt",
    "archive",
    "check_shared_root",
    "find_run_dirs",
    "locked",
    "read_results",
    "read_resume",
    "read_run",
    "read_status",
    "remove_stale_staging",
    "run_statuses",
    "staging_dirs",
    "write_resume",
    "write_results",
    "write_status",
]
