"""Models: what can be built, fed with which inputs, and checked before it is measured.

registry.py       the built-in registry by name (curated torchvision here, timm and transformers in families.py,
                  every other torchvision and timm model from catalogue.py), ``build``, the weights
                  ``identity`` (cache key) and the inputs a model is fed
catalogue.py      every torchvision classification model and every timm model by name, sized from the library's
                  configuration, built from random weights, never downloaded
families.py       curated timm image models and Hugging Face transformers, from their configurations, offline
files.py          the admin's model files: ``<name>.py`` (code) and ``<name>.pt2`` (read as data, pt2_files.py)
pt2_files.py      loading a ``.pt2`` ExportedProgram without unpickling or executing anything
pt2_exprs.py      its symbolic shape expressions: sympy notation only, no number too large to compute
load_limit.py     the time limit of a ``.pt2`` load (check + deserialise)
entry.py          ``RegistryEntry`` and ``BuiltModel``
checks.py         the memory estimate and the batch-1 check run, dynamic ranges the model accepts, ``model_info``
footprint.py      what a run needs in memory per device (weights, inputs, activations on the meta device, workspace)
memory.py         weights, inputs and the footprint against RAM / GPU memory at submit, before they are allocated
input_tensors.py  example tensors from input specs, and the specs of a file model's own tensors
"""
