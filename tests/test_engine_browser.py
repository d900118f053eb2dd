"""The engine view and Compare's kernel section in Debian chromium, on a server holding the bundled H200 sample runs:
open the engine graph of a resnet50 run and of the vit_b_16 run (149 layers), click a layer and read its details;
the run's report shows the same graph offline; Compare of resnet50 fp16 against its relu-forced sibling names where
the extra kernel time comes from and shows both runs' time split. Screenshots under test-artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_browser import ARTIFACTS, CHART, CHROMIUM, CHROMIUM_ARGS, ROOT, _screenshot, _settle, _streamlit

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAMPLES = ROOT / "samples"


def _sample_run(name: str):
    from engine.store.exchange import decode_run

    return decode_run((SAMPLES / f"{name}.json.gz").read_bytes())[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    tmp = tmp_path_factory.mktemp("engine-browser")
    with _streamlit(tmp, TRTDASH_SAMPLES_DIR=str(SAMPLES)) as base:
        yield base, tmp / "data"


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def _details(page) -> dict[str, str]:
    """The layer-details table (the page's first dataframe) as field -> value, read from the grid's accessible
    cells (the grid itself draws on a canvas)."""
    cells = page.evaluate(
        "() => [...document.querySelector(\"[data-testid='stDataFrame']\").querySelectorAll('[role=gridcell]')]"
        ".map(e => e.textContent)"
    )
    return dict(zip(cells[0::2], cells[1::2], strict=False))


def _open(page, url: str) -> None:
    """Open a page by its link and wait for its chart. A "Page not found" dialog that a direct link to a page may
    raise on a fresh session (issue 28, problem 2: fixed on its own branch) is closed first: it covers the chart."""
    page.goto(url)
    page.wait_for_selector(CHART)
    _settle(page)
    if page.locator("[data-testid='stDialog']").count():
        page.keyboard.press("Escape")
        page.locator("[data-testid='stDialog']").wait_for(state="detached")


def _hover_layer(page, chart, index: int) -> tuple[float, float]:
    """The mouse over the ``index``-th node of an engine graph (plotly finds the point under its drag layer from the
    mouse position, as for a user); returns where it is. Waits for the hover label."""
    chart.scroll_into_view_if_needed()
    plot = chart.locator(".js-plotly-plot").first if chart.locator(".js-plotly-plot").count() else chart
    layers = plot.evaluate("gd => gd.data.findIndex(t => t.name === 'layers')")  # the trace of the nodes
    nodes = plot.locator(".scatterlayer .trace").nth(layers)
    box = nodes.locator(".points path").nth(index).bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y - 60)  # off the layer line first, then onto the point in one move: no hover on the way
    page.mouse.move(x, y)
    page.wait_for_selector(".hoverlayer .hovertext")
    page.wait_for_timeout(300)  # plotly redraws the label on its next frame
    return x, y


def _click_layer(page, index: int) -> None:
    page.mouse.click(*_hover_layer(page, page.locator("[data-testid='stPlotlyChart']").first, index))


def _selected_layer(page) -> str:
    return page.get_by_role("combobox", name="Layer details").input_value()


RESNET50_LAYER_2 = {
    "layer": "[MAX]-[aten_ops.max_pool2d.default]-[maxpool/max_pool2d_default]_myl0_2",
    "layer type": "maxpool",
    "PyTorch module": "maxpool",
    "precision": "fp32",
}
VIT_LAYER_2 = {  # a fused Myelin layer: its module read from the tensor it writes
    "layer": "__myl_TranConcAddCastMeanSubMulMeanAddSqrtDivMulCastMulAdd_myl0_2",
    "layer type": "kgen",
    "PyTorch module": "encoder.layers.encoder_layer_0.ln_1",
    "module read from": "output tensor",
    "precision": "fp16",
}


@pytest.mark.parametrize(
    ("sample", "layers", "clicked", "expected"),
    [("resnet50_fp32", 73, 2, RESNET50_LAYER_2), ("vit_b_16_fp16", 149, 2, VIT_LAYER_2)],
)
def test_engine_view_of_a_bundled_run_click_a_layer(server, page, sample, layers, clicked, expected):
    base, _ = server
    run = _sample_run(sample)
    _open(page, f"{base}/engine?run={run.run_id}")
    main = page.inner_text("[data-testid='stMain']")
    assert f"{layers} layers in execution order" in main and "Traceback" not in main
    before = _selected_layer(page)
    _click_layer(page, clicked)
    _settle(page)
    page.wait_for_function(
        "(before) => document.querySelector('input[aria-label=\"Layer details\"]').value !== before", arg=before
    )
    chosen = _selected_layer(page)
    assert chosen.startswith(f"#{clicked} ")
    page.wait_for_function(  # the details table's "layer" row names the clicked layer
        "(name) => { const c = [...document.querySelector(\"[data-testid='stDataFrame']\")"
        ".querySelectorAll('[role=gridcell]')].map(e => e.textContent);"
        " return c[c.indexOf('layer') + 1] === name }",
        arg=expected["layer"],
    )
    details = _details(page)
    for field, value in expected.items():  # what the layer information says of the clicked layer
        assert details.get(field) == value, (field, details)
    _screenshot(page, f"engine_{sample}")


def test_engine_view_shows_the_pytorch_fallback_between_engines(server, page):
    base, _ = server
    run = _sample_run("resnet50_fp16_relu_forced_mbs5")
    _open(page, f"{base}/engine?run={run.run_id}")
    main = page.inner_text("[data-testid='stMain']")
    assert "PyTorch fallback 5" in main and "TensorRT engine 4" in main
    assert "linked in execution order only" in main  # this run kept no layer information: said
    _screenshot(page, "engine_relu_forced")


def test_the_run_report_holds_the_engine_graph_offline(server, page, tmp_path):
    from engine import report
    from engine.store import open_store

    _, data = server
    run = _sample_run("vit_b_16_fp16")
    html = tmp_path / "vit_report.html"
    html.write_bytes(report.runs_html(open_store(data), [run.run_id]))
    page.goto(html.as_uri())
    section = page.locator("#engine").first
    section.scroll_into_view_if_needed()
    assert "149 layers in execution order" in section.inner_text()
    chart = section.locator(".js-plotly-plot").first
    assert chart.evaluate("gd => gd.data.find(t => t.name === 'layers').customdata.length") == 149
    _hover_layer(page, chart, 74)  # a fused layer norm of the 7th encoder block
    hover = page.evaluate("() => [...document.querySelectorAll('.hoverlayer')].map(e => e.textContent).join(' ')")
    assert "__myl_ReshCastMeanSubMulMeanAddSqrtDivMulCastMulAdd_myl0_74" in hover
    assert "module: encoder.layers.encoder_layer_6.ln_1 (from output tensor)" in hover
    page.screenshot(path=str(ARTIFACTS / "engine_report_offline.png"))


def test_compare_names_where_the_extra_kernel_time_comes_from(server, page):
    base, _ = server
    fast, relu = _sample_run("resnet50_fp16"), _sample_run("resnet50_fp16_relu_forced_mbs5")
    _open(page, f"{base}/compare?run={fast.run_id}&run={relu.run_id}")
    page.get_by_text("Kernel diff").first.wait_for()
    main = page.inner_text("[data-testid='stMain']")
    headline = re.search(r"\+0\.\d+ ms GPU kernel time per inference[^\n]*", main)
    assert headline, main[-3000:]
    assert "PyTorch (ATen)" in headline.group(0) and "PyTorch fallback" in headline.group(0)
    split = page.locator("[data-testid='stPlotlyChart']").filter(has_text="Where one inference's time goes")
    split.wait_for()
    text = split.inner_text()
    assert "GPU running kernels" in text and fast.run_id[-8:] in text and relu.run_id[-8:] in text
    page.locator("[data-testid='stPlotlyChart']").filter(has_text="Kernel time per inference").wait_for()
    _screenshot(page, "compare_kernel_diff")
