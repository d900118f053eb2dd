"""The bundled samples recorded on a GPU, installed into a data directory in one step: the sample runs
(``samples/*.json.gz``), the bundled localisations with their runs (``samples/localisations/``) and the bundled
auto-tune searches with theirs (``samples/autotune/``, engine/studies/autotune/bundle.py), so that the
dashboard and ``python -m engine runs`` list every bundled run from the first page shown (History's count does not
grow once another page reads a bundle). ``TRTDASH_SAMPLES_DIR`` points elsewhere; an empty directory turns samples
off."""

from __future__ import annotations

from pathlib import Path

from engine.store import RunStore, open_store


def open_with_samples(root: str | Path | None = None) -> RunStore:
    """The store of ``root`` (the configured data directory by default) with every bundled sample installed
    (once; idempotent)."""
    from engine.studies.autotune.bundle import import_samples as import_autotunes  # noqa: PLC0415 - optuna: late
    from engine.studies.localisation.records import LocalisationRecords  # noqa: PLC0415 - pandas-heavy, late

    store = open_store(root)
    LocalisationRecords(store.root).import_samples(store)
    import_autotunes(store)
    return store
