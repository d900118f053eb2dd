"""Comparing runs, and the History listing they are picked from: tables and sentences the Compare and History
pages (and reports) place.

    metrics.py         headline metrics per run, deltas and speedups against a baseline, per-layer-type time
    differences.py     what really differs between the runs, and the figure that judges the difference
    settings_table.py  every setting side by side, the ones that differ, the labels that tell the runs apart
    history.py         the History listing: filters, labels, baselines
"""
