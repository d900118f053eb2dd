"""Auto-tune, front door: search the compile-knob space for the fastest configuration that meets constraints.

search.py  the search: Optuna's TPE (or every point of a small space) through one ``evaluate(request)``
trials.py  the constraints, one record per trial, the report against Torch-TensorRT's defaults and baselines
"""

from engine.studies.autotune.search import (
    MAX_TRIALS,
    SEARCHABLE_KNOBS,
    Evaluate,
    autotune,
    default_space,
    defaults_request,
    inductor_mode,
)
from engine.studies.autotune.trials import AutotuneReport, Constraints, SearchSpace, TrialRecord, check, trials_table

__all__ = [
    "MAX_TRIALS",
    "SEARCHABLE_KNOBS",
    "AutotuneReport",
    "Constraints",
    "Evaluate",
    "SearchSpace",
    "TrialRecord",
    "autotune",
    "check",
    "default_space",
    "defaults_request",
    "inductor_mode",
    "trials_table",
]
