"""A localisation in one short sentence, the first thing its page says (the full account is
``Localisation.summary``). Apart from ``shipping`` because it reads the study's states, and the study's own tables
read ``shipping``."""

from __future__ import annotations

from engine.studies.localisation.bisect import UNFIXABLE
from engine.studies.localisation.shipping import NOT_FASTER, SHIPS, fix_verdict
from engine.studies.localisation.study import (
    CANCELLED,
    FAILED,
    NOTHING_TO_FIX,
    REFERENCE_FAILS,
    RUNNING,
    Localisation,
)


def headline(study: Localisation) -> str:
    """The study in one short sentence, before the details (``Localisation.summary``)."""
    hp, low = study.high_precision, study.label
    if study.status == RUNNING:
        return f"Running: {study.builds} of at most {study.budget} search builds so far."
    if study.status == CANCELLED:
        return f"Cancelled after {study.builds} search builds."
    if study.status == FAILED:
        return "Stopped before an answer: see why below."
    if study.outcome == NOTHING_TO_FIX:
        return f"Nothing to fix: the {low} build is already within tolerance."
    if study.outcome == REFERENCE_FAILS:
        return f"The {hp} build itself fails the criterion: no set of {hp} modules can fix {low}."
    if study.outcome == UNFIXABLE:
        return f"No fix: even all {len(study.candidates)} candidate modules in {hp} leave {low} failing."
    found = fix_verdict(study)
    if found is None:
        return f"No passing build within {study.budget} search builds."
    kept = f"{found.kept} of {found.candidates} modules in {hp}"
    if found.kind == SHIPS:
        assert found.gain is not None
        return (
            f"Fix: keep {kept}; within tolerance and {found.gain:.0%} faster than {hp} "
            f"({found.fix_ms:.3g} vs {found.reference_ms:.3g} ms {found.figure})."
        )
    if found.kind == NOT_FASTER:
        return (
            f"No fix worth shipping: the smallest passing build keeps {kept} and is no faster than {hp} "
            f"({found.fix_ms:.3g} vs {found.reference_ms:.3g} ms {found.figure}); build in {hp}."
        )
    return f"Keeping {kept} passes on the {study.measured_on}; not timed, so whether it beats {hp} is open."
