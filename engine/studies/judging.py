"""Which measured figure judges a setting, and how steady that figure is.

End-to-end latency at small batch is mostly the host launching work: on the H200 one resnet50 fp16
engine timed 0.601-1.127 ms end to end in nine fresh processes (87% apart) while what the GPU spent on
the same engine held within 0.13%. So a setting that changes the kernels (optimization_level,
min_block_size, precision, quantization, torch_executed_ops, the batch, the model) is judged on a device
figure, and one that changes the host's work per call (CUDA graphs, the runtime, the frontend, the
backend) on end-to-end latency. ``engine.studies.knobs.KNOBS`` is the one table of that choice, one record per setting.

The device figure is chosen by what every run measured steadily (``choose``): the CUDA-graph replay where every
run captured one (the same kernels with their overlap on several streams, no host launches), else GPU busy time
where every run's passed its checks (``engine.profiling.invariants``: settled, windows within 2%, within
end-to-end and replay; a kernel-duration sum stored before busy time never does), else end-to-end latency;
the verdict says which and why.

Each figure comes with its own noise: inside one run (``Reading``: the bootstrap interval of the e2e
median; the fastest and slowest trace window of the GPU time) and between fresh processes
(``Drift``: one build timed in separate runs). Two runs that ran the same engine plan on the same GPU
at the same shapes (``same_engine``) did the same work: a gap in a kernel figure between them is noise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.profiling import invariants
from engine.quantization.schemes import FLAVOUR_NAMES
from engine.result import RunResult
from engine.settings.inputs import measured_shapes, parse_inputs
from engine.studies.knobs import HOST, knob
from engine.studies.statistics import END_TO_END, GPU_TIME, GRAPH_REPLAY, METRIC_NAMES


def where_measured(runs: Iterable[RunResult]) -> str:
    """Where runs were measured, as a verdict names it: "NVIDIA H200 · TensorRT-RTX" (the GPU and the Torch-TensorRT
    flavour of TensorRT runs), "cpu · eager PyTorch"; "" when the runs were measured in different places."""
    places = set()
    for r in runs:
        device = r.env.get("device_name") or r.env.get("device") or ""
        if r.request.get("backend") == "tensorrt":
            flavour = FLAVOUR_NAMES.get(r.env.get("flavour", "none"), "") if r.env.get("flavour") != "none" else ""
        else:
            flavour = "eager PyTorch"
        places.add(" · ".join(p for p in (device, flavour) if p))
    return places.pop() if len(places) == 1 else ""


def verdict_context(runs: Sequence[RunResult], metric: str) -> str:
    """What a study verdict's headline says after itself: "NVIDIA H200 · TensorRT-RTX · judged on GPU time"."""
    where = where_measured(runs)
    return " · ".join(p for p in (where, f"judged on {METRIC_NAMES[metric]}") if p)


def preferred_metric(settings: Iterable[str]) -> str:
    """End-to-end when any of the settings changes the host's work per call, else GPU time (a device figure:
    ``choose`` takes the CUDA-graph replay when every run has one)."""
    return END_TO_END if any(knob(s).changes == HOST for s in settings) else GPU_TIME


# -- why a figure is missing ----------------------------------------------------------------------------
def gpu_time_absence(run: RunResult) -> str:
    """Why a run has no GPU time ("" when it has one), in words a page can show after "GPU time: "."""
    if run.gpu_time is not None:
        return ""
    if run.env.get("device") != "cuda":
        return "needs an NVIDIA GPU"
    if not run.latency.timed:
        return "not timed (analyze run)"
    if run.graph_replay is None and run.plan_fingerprint is None:
        return "not measured (recorded before GPU time existed)"
    return "not measured"


def figure_problem(run: RunResult, metric: str) -> str:
    """Why ``run`` cannot be judged on ``metric`` ("" when it can), in a few words."""
    if metric == GRAPH_REPLAY:
        gr = run.graph_replay
        if gr is None:
            absent = gpu_time_absence(run) if run.gpu_time is None else ""
            return absent or "not attempted"
        if not gr.captured or not gr.median_ms:
            return re.split(r"[:,;]", (gr.reason or "not captured").removeprefix("not attempted: "))[0]
        return ""
    if metric == GPU_TIME:
        return gpu_time_absence(run) or "; ".join(f.short for f in invariants.check(run))
    return "" if run.latency.timed else "not timed (analyze run)"


@dataclass(frozen=True)
class Judging:
    """The figure that judges a difference between runs, and why, when it is not the one the settings call for."""

    metric: str  # GRAPH_REPLAY | GPU_TIME | END_TO_END
    preferred: str  # what the differing settings call for: GPU_TIME (a device figure) | END_TO_END
    reason: str = ""  # why ``metric`` stands in for ``preferred`` ("" when they agree)

    @property
    def name(self) -> str:
        return METRIC_NAMES[self.metric]

    @property
    def note(self) -> str:
        """ "judged on end-to-end latency: CUDA-graph replay ...; GPU time ...", "" when the replay judges a
        kernel setting or end-to-end a host setting."""
        return f"judged on {self.name}: {self.reason}" if self.reason else ""


def _which(n: int, of: int) -> str:
    return "this run" if n == 1 and of == 1 else "these runs" if n == of else f"{n} of these runs"


def _why(problems: Sequence[str]) -> str:
    """ "the engine takes dynamic shapes; trace windows 6% apart", each reason once."""
    return "; ".join(dict.fromkeys(p for ps in problems for p in ps.split("; ") if p))


def pick(preferred: str, replay_problems: Sequence[str], gpu_problems: Sequence[str]) -> Judging:
    """The judged figure from each run's problems with the two device figures (one entry per timed run, ""
    where it has none): the replay where no run has a problem with it, else busy time, else end-to-end."""
    if preferred == END_TO_END:
        return Judging(END_TO_END, END_TO_END)
    if not any(replay_problems):
        return Judging(GRAPH_REPLAY, preferred)
    n_replay = sum(1 for p in replay_problems if p)
    replay_why = f"no CUDA-graph replay ({_why(replay_problems)}) for {_which(n_replay, len(replay_problems))}"
    if not any(gpu_problems):
        return Judging(GPU_TIME, preferred, replay_why)
    n_gpu = sum(1 for p in gpu_problems if p)
    gpu_why = f"GPU time not fit to judge ({_why(gpu_problems)}) for {_which(n_gpu, len(gpu_problems))}"
    return Judging(
        END_TO_END,
        preferred,
        f"{replay_why}; {gpu_why}. End-to-end latency swings between fresh processes far more than a device figure",
    )


def choose(settings: Iterable[str], runs: Sequence[RunResult]) -> Judging:
    """The figure that judges ``runs`` differing in ``settings`` (``pick``): for kernel settings the CUDA-graph
    replay when every run captured one, else GPU busy time when every run's passed its checks, else end-to-end
    latency (with the reason); end-to-end for host settings."""
    preferred = preferred_metric(settings)
    timed = [r for r in runs if r.latency.timed]
    if preferred == END_TO_END or not timed:
        return Judging(preferred, preferred)
    replay = [figure_problem(r, GRAPH_REPLAY) for r in timed]
    return pick(preferred, replay, [figure_problem(r, GPU_TIME) for r in timed])


def steadier(judging: Judging, runs: Sequence[RunResult], drift: Mapping[str, float]) -> Judging:
    """The replay-judged ``judging`` moved to GPU busy time when every run's busy time is fit to judge and it
    drifted less than the replay between runs of one build (``drift``: the relative drift of each figure, as a
    study measured it). The replay keeps host work out but not the gaps between kernels, and those moved 12.7%
    between fresh processes of one resnet50 build on the H200."""
    replay, busy = drift.get(GRAPH_REPLAY), drift.get(GPU_TIME)
    if judging.metric != GRAPH_REPLAY or replay is None or busy is None or busy >= replay:
        return judging
    if any(figure_problem(r, GPU_TIME) for r in runs if r.latency.timed):
        return judging
    return Judging(
        GPU_TIME,
        judging.preferred,
        f"it held steadier than the CUDA-graph replay between runs of one build ({busy:.2%} against {replay:.2%})",
    )


# -- one engine, run twice -----------------------------------------------------------------------------
def shapes_key(request: dict) -> tuple:
    """The input shapes a run measured at: what a gap between two runs of one engine plan can still come from."""
    m = request.get("model") or {}
    inputs = m.get("inputs")
    shapes: object = None
    if inputs:
        try:
            shapes = tuple(
                sorted(measured_shapes(parse_inputs(inputs), m.get("batch_size", 1), m.get("sequence_length")).items())
            )
        except Exception:  # noqa: BLE001 - a stored request the current rules refuse: compare it as written
            shapes = repr(inputs)
    return (m.get("batch_size"), tuple(m.get("input_shape") or ()), m.get("sequence_length"), shapes)


def same_engine(a: RunResult, b: RunResult) -> bool:
    """Both runs recorded the same engine plan (kernels), on the same GPU type, at the same input shapes."""
    return (
        a.plan_fingerprint is not None
        and a.plan_fingerprint == b.plan_fingerprint
        and a.env.get("device_name") == b.env.get("device_name")
        and shapes_key(a.request) == shapes_key(b.request)
    )


def plan_groups(runs: Sequence[RunResult]) -> list[list[RunResult]]:
    """Runs grouped by ``same_engine``, in first-seen order; runs without a plan fingerprint stay alone."""
    groups: list[list[RunResult]] = []
    for r in runs:
        for g in groups:
            if same_engine(g[0], r):
                g.append(r)
                break
        else:
            groups.append([r])
    return groups
