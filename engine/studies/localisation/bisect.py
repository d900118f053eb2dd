"""The search for the modules to keep in higher precision, as a pure state machine.

``Bisection`` holds the candidates (units in execution order) and what the builds so far said;
``next_keep()`` names the next set to build, ``record(keep, passed)`` takes its verdict and returns the next
state. Nothing here builds, waits or stores: a driver does (``engine.studies.localisation.driver``), from the page, the
CLI or a long-lived supervisor, and the state round-trips through JSON (``to_dict``/``from_dict``).

The search assumes that keeping more modules in higher precision never breaks a build that passed (monotonicity),
and that the build with nothing kept fails (the driver measured it). It finds culprits from the back:

1. the smallest prefix of the candidates which, kept, makes the build pass (binary search: prefix 0 fails,
   the whole list is assumed to pass and is built only when every shorter prefix failed). Its last module is a
   culprit: without it the build fails even with every module before it kept;
2. the culprits found so far alone are built (the confirming build). Passing: done. Failing: step 1 again over
   the candidates before the latest culprit, with the culprits kept.

One culprit costs about log2(n) builds plus the confirming one; every further culprit another log2 of the
remaining prefix. Each culprit is needed given the ones after it, which makes the set small, not provably the
smallest. ``max_builds`` bounds the search; on reaching it the smallest passing set seen so far is the answer.

A build whose job crashed (compile error, CUDA fault, out of memory) is recorded as failing: it is not a usable fix.
Monotonicity then reads it as "every smaller keep set fails too", which the search never checks (it only builds
prefixes above a failing one), so a crash can move the boundary up: the culprit named next to a crashed build may be
a module whose keeping avoids the crash rather than one whose precision breaks the output, and a crash of the build
keeping every candidate reads as ``UNFIXABLE``. The driver keeps the crash's error on its step and the study's
sentence names every crashed build, so the answer is read with that in mind.

Several culprits each needed alone (every module of the network breaks the engine in the low precision) defeat
the search by design: each costs another log2(n) builds, so the budget ends it and the answer is the smallest
passing set seen (often every candidate kept); ``engine.studies.localisation.reading`` tells that case apart from
the builds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

# outcomes
RUNNING = ""
FOUND = "found"  # the culprits alone pass
BUDGET = "budget"  # max_builds reached; ``best`` is the smallest passing set seen (may be None)
UNFIXABLE = "unfixable"  # keeping every candidate still fails


def default_max_builds(candidates: int) -> int:
    """Two rounds of bisection and their confirming builds: one culprit needs about half of it."""
    return 2 * math.ceil(math.log2(candidates + 1)) + 2


SEARCH, CONFIRM, VERIFY = "search", "confirm", "verify"


@dataclass(frozen=True)
class Bisection:
    candidates: tuple[str, ...]
    max_builds: int
    lo: int = 0  # keeping candidates[:lo] + found fails (0: the unfixed build failed)
    hi: int = 0  # keeping candidates[:hi] + found passes (built, or assumed: hi_built)
    hi_built: bool = False
    found: tuple[str, ...] = ()  # culprits, in execution order
    phase: str = SEARCH  # search: bisect the prefix; confirm: the culprits alone;
    #                                  verify: the whole remaining prefix, after the last candidate alone failed
    builds: int = 0
    outcome: str = RUNNING
    best: tuple[str, ...] | None = None  # the smallest keep set that passed so far

    @classmethod
    def start(cls, candidates: list[str] | tuple[str, ...], max_builds: int | None = None) -> Bisection:
        """The search once the build with nothing kept has failed."""
        if not candidates:
            raise ValueError("no candidate modules to keep")
        n = len(candidates)
        return cls(tuple(candidates), max_builds or default_max_builds(n), hi=n)

    @property
    def done(self) -> bool:
        return self.outcome != RUNNING

    def _ordered(self, keep: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        index = {c: i for i, c in enumerate(self.candidates)}
        return tuple(sorted(set(keep), key=index.__getitem__))

    def _prefix(self, k: int) -> tuple[str, ...]:
        return self._ordered([*self.candidates[:k], *self.found])

    def next_keep(self) -> tuple[str, ...] | None:
        """The set to build next, in execution order; None when the search is over."""
        if self.done:
            return None
        if self.phase == CONFIRM:
            return self._ordered(self.found)
        if self.phase == VERIFY:
            return self._prefix(self.hi)
        if self.hi - self.lo > 1:
            return self._prefix((self.lo + self.hi) // 2)
        # one candidate left and the prefix through it never built: try it with the culprits alone first (passing,
        # that is the answer and the confirming build at once; failing, the prefix is built to tell)
        return self._ordered([self.candidates[self.hi - 1], *self.found])

    @property
    def next_may_answer(self) -> bool:
        """Whether the next build could be the answer (the culprits alone, or the last candidate with them): the
        driver measures those as fully as the unfixed build, so that their latency compares with it."""
        if self.done or self.phase == VERIFY:
            return False
        return self.phase == CONFIRM or (self.hi - self.lo == 1 and not self.hi_built)

    def record(self, keep: tuple[str, ...] | list[str], passed: bool) -> Bisection:
        """The state after the build of ``keep`` (the set ``next_keep`` named) passed or failed."""
        if self.done:
            raise ValueError("the search is over")
        expected = self.next_keep()
        if tuple(keep) != expected:
            raise ValueError(f"recorded a build of {len(keep)} modules, but the search asked for {expected}")
        s = replace(self, builds=self.builds + 1)
        if passed and (s.best is None or len(keep) < len(s.best)):
            s = replace(s, best=tuple(keep))
        if s.phase == CONFIRM:
            if passed:
                return replace(s, outcome=FOUND)
            s = replace(s, phase=SEARCH, lo=0)  # another culprit hides before the latest
        elif s.phase == VERIFY:
            if not passed:  # every candidate kept (with the culprits) still fails
                return replace(s, outcome=UNFIXABLE)
            # the last candidate is a culprit; with the culprits alone it already failed: search on
            s = replace(s, found=(s.candidates[s.hi - 1], *s.found), hi=s.hi - 1, lo=0, hi_built=True, phase=SEARCH)
            if s.hi == 0:
                return replace(s, outcome=FOUND)
        elif s.hi - s.lo > 1:
            mid = (s.lo + s.hi) // 2
            s = replace(s, hi=mid, hi_built=True) if passed else replace(s, lo=mid)
        elif passed:  # the last candidate with the culprits alone
            return replace(s, found=tuple(keep), outcome=FOUND)
        else:
            s = replace(s, phase=VERIFY)
        if s.phase == SEARCH and s.hi - s.lo == 1 and s.hi_built:
            s = s._culprit_found()
        if not s.done and s.builds >= s.max_builds:
            s = replace(s, outcome=BUDGET)
        return s

    def _culprit_found(self) -> Bisection:
        culprit = self.candidates[self.hi - 1]
        rest = self.hi - 1  # keeping candidates[:rest] + culprit + found is what passed
        found = (culprit, *self.found)
        if rest == 0:  # that was the culprits alone
            return replace(self, found=found, hi=0, outcome=FOUND)
        return replace(self, found=found, hi=rest, lo=0, hi_built=True, phase=CONFIRM)

    @property
    def answer(self) -> tuple[str, ...] | None:
        """The modules to keep: the culprits when found, else the smallest passing set seen (None: none passed)."""
        if self.outcome == FOUND:
            return self._ordered(self.found)
        return self.best

    @property
    def remaining_builds(self) -> int:
        return max(0, self.max_builds - self.builds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bisection:
        d = dict(d)
        d["candidates"] = tuple(d["candidates"])
        d["found"] = tuple(d.get("found", ()))
        if d.get("best") is not None:
            d["best"] = tuple(d["best"])
        return cls(**d)
