"""Charts and the report of generative runs, from a real (tiny, CPU, eager) run: every chart carries the figures of
its table, the report renders, and runs that are not like with like are not compared."""

import dataclasses

import pytest
import torch

from engine.charts import generative as charts
from engine.errors import UserError
from engine.generative import tables
from engine.generative.request import GenerateRequest


@pytest.fixture(scope="module")
def run():
    from engine.generative.run import execute

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return execute(
            GenerateRequest("hf/tiny-gpt2", precision="fp32", device="cpu", prompt_lengths=(8, 16), new_tokens=4,
                            contexts=(32, 64), batch_sizes=(1, 2, 4), warmup_iters=1, timed_iters=3)
        )  # fmt: skip
    finally:
        torch.set_num_threads(before)


def ys(fig, name):
    return [list(t.y) for t in fig.data if t.name == name]


def test_charts_draw_the_tables(run):
    decode = tables.decode_table([run])
    assert list(decode["context"]) == [32, 64]
    fig = charts.decode_vs_context(decode)
    assert ys(fig, "eager") == [list(decode["median_ms"])]
    batch = tables.batch_table([run])
    fig = charts.tokens_per_s_vs_batch(batch, budget_ms=run.request.latency_budget_ms)
    assert ys(fig, "eager") == [list(batch["tokens_per_s"])]
    prefill = tables.prefill_table([run])
    assert ys(charts.prefill_vs_prompt(prefill), "eager") == [list(prefill["median_ms"])]
    split = tables.layer_split_table([run])
    fig = charts.layer_split(split)
    assert {t.name for t in fig.data} == {"attention", "mlp", "norms", "rest"}
    assert "No host overhead" in charts.host_overhead(tables.host_table([run])).layout.annotations[0].text


def test_budget_marks_the_batches_whose_step_is_over_it(run):
    batch = tables.batch_table([run])
    tiny_budget = float(batch["median_ms"].min()) / 2
    fig = charts.tokens_per_s_vs_batch(batch, budget_ms=tiny_budget)
    over = [t for t in fig.data if t.name and t.name.startswith("step over")]
    assert len(over) == 1 and len(over[0].x) == len(batch)


def test_report_of_a_run_and_of_two_like_runs(run):
    from engine.report.document import render
    from engine.report.generative import generative_report

    html = render(generative_report([run])).decode()
    assert run.run_id in html and "time to first token" in html
    twin = dataclasses.replace(run, run_id="20260101-000000-0123abcd")
    assert len(tables.comparable([run, twin])) == 1
    assert "2 generative runs" in render(generative_report([run, twin])).decode()
    other = dataclasses.replace(
        run, run_id="20260101-000000-0123abce", request=dataclasses.replace(run.request, contexts=(32, 128))
    )
    with pytest.raises(UserError, match="not like with like"):
        generative_report([run, other])


def test_report_cli_writes_a_stored_generative_run(run, tmp_path, monkeypatch):
    from engine.__main__ import main
    from engine.store import generative_runs

    monkeypatch.setenv("TRTDASH_DATA_DIR", str(tmp_path / "data"))
    generative_runs.save(run.to_dict())
    out = tmp_path / "r.html"
    assert main(["report", run.run_id, "-o", str(out)]) == 0
    assert run.run_id in out.read_text()
