"""Settings: what a run request is, as data defined once (no torch imported here).

defaults.py   every default and allowed value, mirrored from Torch-TensorRT's ``_defaults.py``
knobs.py      ``KnobInfo``: per knob, its widget, allowed values, cache-key rules, TensorRT argument, CLI flag
inputs.py     ``InputSpec``: a model input's shape, dtype, value range and dynamic range; the rules needing no model
request.py    ``RunRequest`` and its parts (model, compile, measure): parsing from plain data and validation
identity.py   the part of a request that changes a measurement, and the cache key
cli.py        the knobs as command-line options
"""
