"""Post-training quantization with NVIDIA ModelOpt, before a TensorRT build (engine/backends/tensorrt/quantize.py
exports and compiles the result).

    schemes.py        the schemes and the capability matrix (no torch, no ModelOpt: pages read it freely)
    calibration.py    calibration data (random, a tensor file, an image folder) and the request's quantization check
    image_folders.py  image folders: flat or labelled by class (top-1 accuracy against the labels)
    fake_quant.py     calibrate and fake-quantize a copy of the model; its reference outputs
    accuracy.py       the three-way accuracy (eager fp32 -> fake-quantized -> engine) and the conversion-problem rule
"""
