"""Where a low-precision build breaks, and what it costs to fix (issue 17).

- ``error_growth``: the PyTorch side, forward hooks on eager fp32, fake-quantized and fp16/bf16-cast models,
  error per module in execution order (``error_table``: that table and how it reads);
- ``bisect``: the search as a pure state machine (finished step results in, next keep set or the answer out);
- ``figures``: what one build measured, and the criterion a fixed build passes;
- ``study``: one localisation as JSON-ready data (its steps, their figures, the result sentence); ``tables``:
  its steps and the unfixed/reference/fix comparison as tables; ``reading``: what the builds say beyond the
  answer (crashed builds, modules that break the engine alone, quantization error against a conversion fault);
- ``driver``: advances a study over a step runner (the job queue, or the fake-quantized model on CPU);
- ``records``: where studies are kept (and the bundled samples); ``cli``: ``python -m engine localise``.

The knob it sets, ``compile.keep_high_precision`` (units a search can keep, path checks, how quantized and cast
builds honour it), is engine/backends/keep_high_precision.py: the backends honour it on every run. Its figures are
engine/charts/localisation.py. Nothing here imports streamlit; submodules are imported where used.
"""
