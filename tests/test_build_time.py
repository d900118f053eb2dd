"""Build time has one definition, ``RunResult.build_s`` (``engine.stage_times.build_time_s``), and every study reads it.

On the bundled resnet50 fp16 ladder step recorded on the H200 (2026-11-30) the compile call took 5.91 s and export
0.71 s: the step built in 6.63 s. The ladder once added the partition (0.08 s) and engine-build (4.26 s) stages that
the compile call already holds, and would read 10.98 s (on the step recorded before, 9.14 s against 14.4 s)."""

import pytest

from engine.charts import ladder as ladder_charts
from engine.stage_times import NESTED_IN_COMPILE, build_time_s
from engine.studies import ladder, sweeps
from engine.studies.localisation.figures import figures_from_result

SAMPLE_LADDER = "resnet50_b8_h200"


@pytest.fixture
def fp16_step(store):
    store.import_samples()
    if SAMPLE_LADDER not in ladder.list_ladders(store):
        pytest.skip(f"the bundled samples hold no ladder {SAMPLE_LADDER!r}")
    rungs = ladder.load_ladder(store, SAMPLE_LADDER)
    run_id = next(r.run_id for r in rungs if r.label == "fp16")
    return store.get(run_id), rungs


def test_the_ladder_and_the_sweep_read_the_same_build_time_on_the_bundled_resnet50_ladder(fp16_step):
    run, rungs = fp16_step
    stages = run.stages_s
    assert set(NESTED_IN_COMPILE) & set(stages) == {"partition_s", "build_s"}  # the nesting the bug ignored
    assert run.build_s == pytest.approx(stages["export_s"] + stages["compile_s"]) == pytest.approx(6.63, abs=0.01)
    assert run.build_s == build_time_s(stages)
    assert sum(stages[k] for k in ("export_s", "partition_s", "build_s", "compile_s")) == pytest.approx(10.98, abs=0.01)

    table = ladder.ladder_table(rungs)
    ladder_build_s = table.loc[table["run_id"] == run.run_id, "build_s"].item()
    sweep = sweeps.sweep_table([run], ["compile.precision"])
    sweep_build_s = sweep.loc[sweep["run_id"] == run.run_id, "build_s"].item()
    assert ladder_build_s == run.build_s == sweep_build_s
    assert figures_from_result(run).build_s == run.build_s  # a localisation's build figure

    # the ladder chart's hover shows the table's figure
    fig = ladder_charts.precision_ladder(table)
    row = list(table["run_id"]).index(run.run_id)
    assert fig.data[0].customdata[row][0] == pytest.approx(6.63, abs=0.01)
