"""Generative mode on the pages: the form of a generative run (Profile), a run's figures, verdict and charts, and
the stored generative runs side by side, like with like (History, Compare). Everything shown is computed in
engine/generative and engine/charts/generative.py; this module only places it.

A run goes to a fresh process (``python -m engine profile --task generate``, the CLI's code path) and is read back
from the store when it ends.
"""

from __future__ import annotations

import json
import subprocess
import sys

import streamlit as st

from engine import capabilities
from engine.charts import generative as charts
from engine.errors import ConfigError
from engine.generative import tables
from engine.generative.cli import command_line
from engine.generative.configs import NAMED
from engine.generative.figures import GenerativeRun
from engine.generative.findings import step_ms
from engine.generative.request import BACKENDS, PRECISIONS, GenerateRequest, check
from engine.generative.words import verdict
from engine.models.files import FILE_PREFIX, custom_model_files
from engine.report import file_name
from engine.store import PROJECT_ROOT
from ui.markdown import plain

RUN_TIMEOUT_S = 1800
MIB = 2**20


def _ints(label: str, default: tuple[int, ...], key: str, help: str) -> tuple[int, ...] | None:
    text = st.text_input(label, ",".join(map(str, default)), key=key, help=help)
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        st.error(f"**{label}**: give whole numbers separated by commas, not {text!r}.", icon=":material/block:")
        return None
    return values


def generative_form(caps: capabilities.Capabilities) -> GenerateRequest | None:
    """The widgets of a generative run; the request when they make one (errors shown where they are)."""
    default = GenerateRequest(model="hf/gpt2")
    files = [FILE_PREFIX + n for n in custom_model_files() if n.endswith(".py")]
    c1, c2, c3 = st.columns(3)
    with c1:
        model = st.selectbox(
            "Decoder",
            list(NAMED) + files,
            key="gen_model",
            help="Registry decoders (random weights) or a model file whose build_model() returns a causal LM.",
        )
    gpu = caps.cuda_available
    with c2:
        backend = st.selectbox("Backend", BACKENDS if gpu else ("eager", "inductor"), key="gen_backend")
    with c3:
        compare = st.multiselect(
            "Compare with (same call)",
            [b for b in (BACKENDS if gpu else ("eager", "inductor")) if b != backend],
            key="gen_compare",
        )
    c1, c2, c3, c4 = st.columns(4)
    with c1:
        precision = st.selectbox("Precision", PRECISIONS if gpu else ("fp32",), index=1 if gpu else 0, key="gen_prec")
    with c2:
        prompts = _ints(
            "Prompt lengths", default.prompt_lengths, "gen_prompts", "Prefill figure; the first is the TTFT's."
        )
    with c3:
        contexts = _ints("Contexts (cache lengths)", default.contexts, "gen_contexts", "Decode-step figure.")
    with c4:
        batches = _ints("Batch sizes", default.batch_sizes, "gen_batches", "Tokens/s figure, at the first context.")
    c1, c2, c3 = st.columns(3)
    with c1:
        new_tokens = int(st.number_input("New tokens", 1, 4096, default.new_tokens, key="gen_new"))
    with c2:
        budget = float(
            st.number_input("Latency budget per token (ms)", 0.1, 10_000.0, default.latency_budget_ms, key="gen_budget")
        )
    with c3:
        graphs = st.checkbox(
            "CUDA graphs for the decode step",
            False,
            key="gen_graphs",
            disabled=not gpu,
            help=None if gpu else "needs an NVIDIA GPU",
        )
    if prompts is None or contexts is None or batches is None:
        return None
    request = GenerateRequest(
        model=model,
        backend=backend,
        compare_with=tuple(compare),
        precision=precision,
        device="cuda" if gpu else "cpu",
        prompt_lengths=prompts,
        new_tokens=new_tokens,
        contexts=contexts,
        batch_sizes=batches,
        cuda_graphs=graphs,
        latency_budget_ms=budget,
    )
    if model in NAMED:  # a model file's shapes are known once it is built: the run checks it then
        try:
            check(request, NAMED[model], None)
        except ConfigError as e:
            st.error(f"**{e.field}**: {e.message}" + (f" {e.hint}" if e.hint else ""), icon=":material/block:")
            return None
    return request


def run_request(request: GenerateRequest) -> GenerativeRun | None:
    """Run ``request`` in a fresh process; the stored run, or None with the error shown."""
    with st.status(f"Running {request.model} ({'+'.join(request.backends)}) …", expanded=False) as status:
        done = subprocess.run(
            [sys.executable, "-m", "engine", *command_line(request), "--json"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        if done.returncode != 0:
            status.update(label="The run failed", state="error")
            lines = [x for x in done.stderr.splitlines() if x.startswith(("error:", "hint:"))]
            st.error(plain("\n".join(lines) or done.stderr[-2000:]), icon=":material/error:")
            return None
        status.update(label="Done", state="complete")
    return GenerativeRun.from_dict(json.loads(done.stdout))


def show_runs(runs: list[GenerativeRun], key: str) -> None:
    """The figures of one run or of runs compared like with like: metrics, verdicts, charts."""
    if len(runs) == 1:
        run = runs[0]
        main = run.backends[run.request.backend]
        cols = st.columns(4)
        cols[0].metric(
            "Time to first token",
            f"{main.ttft.median_ms:.3f} ms",
            help=f"prompt {main.prefill[0].prompt_len}; p10-p90 {main.ttft.p10_ms:.3f}-{main.ttft.p90_ms:.3f}",
        )
        cols[1].metric(
            "Decode step", f"{step_ms(main.decode[0]):.3f} ms", help=f"batch 1, context {main.decode[0].context}"
        )
        cols[2].metric("KV cache per token", f"{run.memory.kv_bytes_per_token / 1024:.1f} KiB")
        cols[3].metric("Weights", f"{run.memory.weights_bytes / MIB:.0f} MiB")
    for run in runs:
        st.markdown(f"**{plain(run.label)}** · {plain(str(run.env.get('device_name', '')))} · `{run.run_id}`")
        st.markdown("\n".join(f"- {plain(s)}" for s in verdict(run)))
        for w in run.warnings:
            st.warning(plain(w))
    budget = runs[0].request.latency_budget_ms
    batch = tables.batch_table(runs)
    tabs = st.tabs(["Decode vs context", "Tokens/s vs batch", "Prefill vs prompt", "Host overhead", "Per-layer split"])
    figures = [
        charts.decode_vs_context(tables.decode_table(runs)),
        charts.tokens_per_s_vs_batch(batch, budget),
        charts.prefill_vs_prompt(tables.prefill_table(runs)),
        charts.host_overhead(tables.host_table(runs)),
        charts.layer_split(tables.layer_split_table(runs)),
    ]
    for i, (tab, fig) in enumerate(zip(tabs, figures, strict=True)):
        with tab:
            st.plotly_chart(fig, width="stretch", key=f"{key}_chart_{i}")
            if i == 1:
                st.plotly_chart(charts.budget_line(batch, budget), width="stretch", key=f"{key}_budget")
    ids = tuple(r.run_id for r in runs)
    st.download_button(
        "Download report",
        _report_bytes(ids),
        file_name(run_ids=ids),
        mime="text/html",
        key=f"{key}_report",
        icon=":material/download:",
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _report_bytes(ids: tuple[str, ...]) -> bytes:
    """A stored run never changes: its report is written once per server."""
    from engine import report  # noqa: PLC0415 - plotly's page writer only when shown

    return report.generative_html(ids)


def runs_section(key: str) -> None:
    """The stored generative runs (bundled samples included); pick runs to see side by side, like with like."""
    runs = tables.stored_runs()
    if not runs:
        st.caption("No generative run stored yet: run one with the generative mode of Profile.")
        return
    st.dataframe(tables.runs_table(runs), hide_index=True, key=f"{key}_table")
    by_id = {r.run_id: r for r in runs}
    picked = st.multiselect(
        "Generative runs to show",
        list(by_id),
        format_func=lambda i: f"{by_id[i].label} · {i}",
        max_selections=6,
        key=f"{key}_pick",
    )
    if not picked:
        return
    groups = tables.comparable([by_id[i] for i in picked])
    if len(groups) > 1:
        st.warning(
            "Only like with like is compared: these runs differ in model, precision, device or sizes. "
            "Showing the first group.",
            icon=":material/compare_arrows:",
        )
    show_runs(groups[0], key)


MODES = ("One forward pass", "Generate (decoder models: prefill and decode apart)")


def generative_mode() -> bool:
    """The Profile page's mode switch: True when the generative mode is picked."""
    return st.radio("Mode", MODES, horizontal=True, key="profile_mode") == MODES[1]


def generative_page(caps: capabilities.Capabilities) -> None:
    """Profile's generative mode: the form, Run, and the run it measured (kept for this session)."""
    with st.container(border=True):
        st.subheader("Decoder and sizes")
        request = generative_form(caps)
    if st.button("Run", type="primary", disabled=request is None, icon=":material/play_arrow:", key="gen_run"):
        assert request is not None
        run = run_request(request)
        if run is not None:
            st.session_state["gen_last_run"] = run.run_id
    last = st.session_state.get("gen_last_run")
    runs = [r for r in tables.stored_runs() if r.run_id == last]
    if runs:
        st.divider()
        show_runs(runs, "gen_profile")
    with st.expander("Stored generative runs (recorded samples included)"):
        runs_section("gen_profile_stored")
