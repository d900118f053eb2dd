"""Plotly figure builders: DataFrames and results in, ``go.Figure`` out. No streamlit and no analysis here.

One theme (``theme``: what each colour means, palettes, layout defaults, ``message_figure``), then figures by page:
``layers`` (with the tables behind them in ``layer_tables``), ``profile`` (set-up stages on the Run page),
``segmentation``, ``compare``, ``sweeps``, ``ladder``, ``autotune``, ``batch`` and ``localisation``. Submodules are
imported where used: ``from engine.charts import layers``.
"""
