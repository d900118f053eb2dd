"""Going on with a stopped localisation: a cancelled one (Cancel, a deadline, Ctrl-C), one whose unfixed or reference
job failed, or one whose search used its budget (given a larger one). ``resume`` makes it running again from its
stored state, and ``driver.advance``/``driver.run`` carry on; ``resume_offer`` says what that would do, for a button.
The page's Go on, ``python -m engine localise --resume`` and ``scripts/record_localisations.py --resume`` use it.
"""

from __future__ import annotations

from dataclasses import replace

from engine.errors import ConfigError
from engine.studies.localisation.bisect import BUDGET
from engine.studies.localisation.bisect import RUNNING as BISECT_RUNNING
from engine.studies.localisation.study import CANCELLED, DONE, FAILED, RUNNING, Localisation


def resume(study: Localisation, max_builds: int | None = None) -> Localisation:
    """Make a stopped study go on from where it stopped (``advance``/``run`` it next): a cancelled one (Cancel, a
    deadline, Ctrl-C), one whose unfixed or reference job failed (a worker lost, out of memory; that job is built
    again) or one whose search used its budget, given a larger ``max_builds``. What finished stays with its figures
    and counts; the builds cut short are dropped and built again; the search goes on from its state. ``max_builds``
    raises (or sets) the budget of search builds, never below what was used. Raises ``ConfigError`` for a study
    that cannot go on, with the reason."""
    search = study.search
    used = search.builds if search is not None else 0
    if study.status == RUNNING:
        raise ConfigError("localisation", f"{study.localisation_id} is running already: follow it instead")
    if study.status == DONE:
        if study.outcome != BUDGET or search is None:
            raise ConfigError(
                "localisation",
                f"{study.localisation_id} is finished ({study.outcome.replace('_', ' ')}): there is nothing to go "
                "on with; start a new localisation to change its settings",
            )
        if max_builds is None:
            raise ConfigError(
                "max_builds",
                f"the search used its whole budget of {search.max_builds} builds: give a larger max_builds to go on",
            )
    if max_builds is not None and max_builds <= used:
        raise ConfigError(
            "max_builds", f"{used} search builds are used already: give more than {used}, or leave it out"
        )
    # builds cut short measured nothing: dropped (only the last steps can be), the unfixed and reference together
    keep = [s for s in study.steps if s.state == "done" or s.crashed]
    if any(study.step(r) not in keep for r in ("unfixed", "reference")):
        keep = []  # the stored run of the one that finished answers its request again at once
    study.steps = keep
    if max_builds is not None:
        study.max_builds = max_builds
        if search is not None:
            study.search = replace(search, max_builds=max_builds, outcome=BISECT_RUNNING)
    study.status, study.outcome = RUNNING, ""
    return study


def resume_offer(study: Localisation) -> str:
    """What going on with a stopped study would do, in a sentence for a button ("" when it cannot go on)."""
    if study.status == DONE and study.outcome == BUDGET and study.search is not None:
        return (
            f"The search used its {study.budget} builds: going on with a larger budget builds from where it "
            "stopped; the builds done so far count."
        )
    if study.status == CANCELLED:
        return f"Cancelled after {study.builds} search builds: going on keeps them and builds what was cut short."
    if study.status == FAILED:
        return "Going on builds the failed step again (a lost worker or a full GPU may not happen twice)."
    return ""


__all__ = ["resume", "resume_offer"]
