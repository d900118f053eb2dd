"""Measurement helpers: the latency harness, per-layer profile parsing, segmentation stats."""
