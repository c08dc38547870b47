"""Compatibility alias of :mod:`msabench.core.batch`, where the batch contract lives now.

Kept so that code written against the old location keeps importing; new code imports from
``msabench.core.batch``.
"""

from msabench.core.batch import *  # noqa: F403
from msabench.core.batch import __all__  # noqa: F401
