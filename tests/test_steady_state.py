"""Warm-up until two consecutive trace windows agree (engine.profiling.steady_state), on recorded and
constructed windows."""

import pytest

from engine.profiling import gpu_time as gt
from engine.profiling import steady_state as ss

SINGLE = "h200-rtx/gpu_trace_resnet18_fp16_3inf.json.gz"  # one engine, 3 inferences


def scaled(kernels, factor):
    """The same launches with every duration and gap times ``factor`` (a slower window of the same plan)."""
    t0 = min(k.start_us for k in kernels)
    return [gt.Kernel(k.name, t0 + (k.start_us - t0) * factor, k.dur_us * factor, k.stream, k.order) for k in kernels]


def feed(windows):
    """A ``next_window`` that hands out ``windows`` in turn and counts the calls."""
    it = iter(windows)
    calls = []

    def next_window():
        calls.append(1)
        return next(it)

    return next_window, calls


@pytest.fixture
def recorded(fixtures_dir):
    return gt.kernels_of(gt.read_events(fixtures_dir / SINGLE))


def test_settles_once_two_consecutive_windows_agree(recorded):
    # slow, slower-but-nearer, then two windows 0.5% apart: settled at the fourth window
    windows = [gt.Window(3, scaled(recorded, f)) for f in (1.6, 1.2, 1.005, 1.0, 1.0)]
    next_window, calls = feed(windows)
    s = ss.settle(next_window)
    assert s.settled and s.windows == 4 and len(calls) == 4 and s.calls == 12
    assert s.gap_pct == pytest.approx(0.5, abs=1e-6) and s.same_sequence


def test_a_changed_kernel_sequence_is_not_steady_even_at_equal_busy_time(recorded):
    respecialised = [gt.Kernel(k.name + "_specialised", k.start_us, k.dur_us, k.stream, k.order) for k in recorded]
    windows = [gt.Window(3, recorded), gt.Window(3, respecialised), gt.Window(3, respecialised)]
    s = ss.settle(feed(windows)[0])
    assert s.settled and s.windows == 3  # the first pair has the same busy time but not the same kernels
    never = ss.settle(feed([gt.Window(3, recorded), gt.Window(3, respecialised)])[0], max_windows=2)
    assert not never.settled and not never.same_sequence and never.gap_pct == pytest.approx(0.0)
    assert "kernel sequence changed" in ss.not_steady_text(never.calls, never.gap_pct)


def test_never_settling_stops_at_the_cap_and_says_how_far_apart(recorded):
    factors = [1.0 + 0.05 * (i % 2) for i in range(50)]  # alternating 5% apart, forever
    next_window, calls = feed([gt.Window(3, scaled(recorded, f)) for f in factors])
    s = ss.settle(next_window, max_windows=6)
    assert not s.settled and s.windows == 6 and len(calls) == 6 and s.calls == 18
    assert s.gap_pct == pytest.approx(5.0)
    assert ss.not_steady_text(s.calls, s.gap_pct) == "not steady after 18 calls: 5.0% between windows"


def test_tolerance_is_the_bound(recorded):
    a, b = gt.Window(3, recorded), gt.Window(3, scaled(recorded, 1.02))
    assert not ss.agree(a, b) and ss.agree(a, b, tolerance=0.021)
    assert ss.gap_pct(a, b) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="max_windows"):
        ss.settle(lambda: a, max_windows=1)


def test_a_window_whose_inferences_differ_never_agrees(recorded):
    ragged = gt.Window(3, recorded[1:])  # 74 kernels do not split into 3 inferences
    assert ragged.sequence is None and not ss.agree(ragged, ragged)


def test_summary_carries_the_settling(recorded):
    s = ss.settle(feed([gt.Window(3, recorded)] * 2)[0])
    g = gt.summarize([gt.Window(3, recorded)], settling=s).gpu_time
    assert (g.settled, g.warmup_calls, g.settle_gap_pct) == (True, 6, 0.0)
    assert gt.summarize([gt.Window(3, recorded)]).gpu_time.settled is None  # not checked
