"""Where a low-precision build breaks, and what it costs to fix (issue 17).

- ``keep``: the ``compile.keep_high_precision`` knob (units a search can keep, path checks, how quantized and
  cast builds honour it);
- ``error_growth``: the PyTorch side, forward hooks on eager fp32, fake-quantized and fp16/bf16-cast models,
  error per module in execution order;
- ``bisect``: the search as a pure state machine (finished step results in, next keep set or the answer out);
- ``study``: one localisation as JSON-ready data (its steps, their figures, the result sentence);
- ``driver``: advances a study over a step runner (the job queue, or the fake-quantized model on CPU);
- ``records``: where studies are kept (and the bundled samples); ``charts``: its figures; ``cli``:
  ``python -m engine localise``.

Nothing here imports streamlit. Submodules are imported where used: ``keep`` is on the backends' path.
"""
