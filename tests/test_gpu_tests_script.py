"""scripts/gpu_tests.py on dummy gpu-marked tests (no GPU needed): every file in its own pytest, spread over lanes
with a GPU and a data directory each, the every-GPU file alone first, and a summary that names what passed, failed,
was skipped, crashed (a real SIGSEGV) or did not run (after the crash in its file, or cut by the deadline)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_tests  # noqa: E402

FILES = {
    "pytest.ini": """
        [pytest]
        markers = gpu: needs a GPU
    """,
    "test_multi_gpu.py": """
        import os, pytest
        @pytest.mark.gpu
        def test_sees_every_gpu():
            assert "CUDA_VISIBLE_DEVICES" not in os.environ and os.environ["TRTDASH_DATA_DIR"].endswith("laneall")
    """,
    "test_ok.py": """
        import os, pytest
        pytestmark = pytest.mark.gpu
        def test_one_gpu_and_its_own_data_dir():
            lane = os.environ["CUDA_VISIBLE_DEVICES"]
            assert lane in ("0", "1") and os.environ["TRTDASH_DATA_DIR"].endswith("lane" + lane)
        def test_two():
            pass
        def test_skipped():
            pytest.skip("not here")
    """,
    "test_plain.py": """
        def test_not_gpu_marked_is_left_alone():
            pass
    """,
    "test_fail.py": """
        import pytest
        @pytest.mark.gpu
        def test_fails():
            assert 1 == 2
    """,
    "test_crash.py": """
        import os, signal, pytest
        pytestmark = pytest.mark.gpu
        def test_before():
            pass
        def test_segfaults():
            os.kill(os.getpid(), signal.SIGSEGV)
        def test_after():
            pass
    """,
    "test_slow.py": """
        import time, pytest
        pytestmark = pytest.mark.gpu
        def test_quick():
            pass
        def test_past_the_deadline():
            time.sleep(600)
    """,
}


def test_the_summary_names_passed_failed_skipped_crashed_and_not_run(tmp_path, monkeypatch, capsys):
    for name, text in FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(gpu_tests, "_gpu_count", lambda: 2)  # a two-GPU machine: one lane per GPU
    # 45 s: room for every file's pytest to start on a loaded CI machine; only the 600 s sleep meets the deadline
    rc = gpu_tests.main(
        ["--root", str(tmp_path), "--lanes", "2", "--budget-s", "45", "--out", str(tmp_path / "out"), "."]
    )
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert rc == 1
    # the every-GPU file ran first, alone; the others on lanes 0 and 1
    assert lines[0] == "[every GPU] test_multi_gpu.py"
    assert {ln.split("]")[0] for ln in lines[1:5]} == {"[lane 0", "[lane 1"}
    said = {ln.split()[-1]: ln.strip() for ln in lines if ln.startswith("  ")}
    assert said["test_multi_gpu.py::test_sees_every_gpu"].startswith("PASSED")
    assert said["test_ok.py::test_one_gpu_and_its_own_data_dir"].startswith("PASSED")
    assert said["test_ok.py::test_skipped"].startswith("SKIPPED")
    assert said["test_fail.py::test_fails"].startswith("FAILED")
    assert said["test_crash.py::test_before"].startswith("PASSED")  # known although the process died after it
    assert said["test_crash.py::test_segfaults"].startswith("CRASHED (SIGSEGV)")
    assert said["test_crash.py::test_after"].startswith("NOT RUN (after the SIGSEGV crash)")
    assert said["test_slow.py::test_quick"].startswith("PASSED")
    assert said["test_slow.py::test_past_the_deadline"].startswith("NOT RUN (deadline)")
    assert "test_plain.py::test_not_gpu_marked_is_left_alone" not in said
    assert any(ln.startswith("test_crash.py [lane ") and "crashed (SIGSEGV)" in ln for ln in lines)
    assert lines[-1].startswith("GPU TESTS passed=5 failed=1 skipped=1 crashed=1 not_run=2 in ")
    assert (tmp_path / "out" / "test_crash.py.log").exists() and (tmp_path / "out" / "test_fail.py.xml").exists()


def test_longest_files_go_first_onto_the_lane_free_soonest():
    files = {f"tests/gpu/{n}": [] for n in gpu_tests.ESTIMATE_S}
    alone, plan = gpu_tests.schedule(files, 2)
    assert alone == ["tests/gpu/test_multi_gpu.py"]
    loads = [sum(gpu_tests.ESTIMATE_S[Path(f).name] for f in lane) for lane in plan]
    assert plan[0][0] == "tests/gpu/test_localise_gpu.py" and abs(loads[0] - loads[1]) <= 80
    one_alone, (one,) = gpu_tests.schedule(files, 1)
    assert one_alone == [] and len(one) == len(files)  # one GPU: the every-GPU file is just another file


def test_lanes_beyond_the_gpu_count_share_the_gpus_and_never_name_a_missing_device(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # one GPU, three lanes: every lane sees the machine's only GPU (device 1 or 2 would skip its tests as "no GPU")
    assert {gpu_tests.lane_env(lane, 1, tmp_path).get("CUDA_VISIBLE_DEVICES") for lane in range(3)} == {None}
    # two GPUs, four lanes: round robin over the two
    assert [gpu_tests.lane_env(lane, 2, tmp_path)["CUDA_VISIBLE_DEVICES"] for lane in range(4)] == ["0", "1", "0", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert [gpu_tests.lane_env(lane, 2, tmp_path)["CUDA_VISIBLE_DEVICES"] for lane in range(3)] == ["3", "5", "3"]
    assert gpu_tests.lane_env(1, 2, tmp_path)["TRTDASH_DATA_DIR"] == str(tmp_path / "lane1")
