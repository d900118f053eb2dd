"""An auto-tune search as one bundled file, so a machine without a GPU opens one recorded on a GPU
(``samples/autotune/<id>.json.gz``): its plan, its Optuna study (study and trial attributes, each trial's parameters,
distributions, state and value) and the runs it measured, exported like sample runs. ``write_bundle`` makes one from a
data directory (``scripts/record_autotune.py`` on a GPU); ``import_samples`` installs every bundle once (idempotent),
its runs as sample runs, its plan and study into the data directory's ``autotune/``, where the Auto-tune tab and
``?autotune=<id>`` find them like a search run here.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import optuna

from engine.errors import UserError
from engine.store import SAMPLES_DIR, RunStore
from engine.studies.autotune.stored import AUTOTUNE_DIR, AutotunePlan, load_plan, optuna_storage, save_plan
from engine.studies.autotune.stored_trials import DEFAULTS_ATTR, RECORD_ATTR
from engine.studies.autotune.study_record import TAG

BUNDLE_FORMAT = "trt-dashboard-autotune"
SUBDIR = "autotune"  # the bundles' folder under samples/
SAMPLES_ENV = "TRTDASH_SAMPLES_DIR"


class BadAutotuneBundle(UserError):
    def __init__(self, what: str):
        super().__init__(f"Not an auto-tune bundle: {what}.", "Record one with scripts/record_autotune.py on a GPU.")


def _trial(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "state": t.state.name,
        "value": t.value,
        "params": t.params,
        "distributions": {k: optuna.distributions.distribution_to_json(d) for k, d in t.distributions.items()},
        "user_attrs": t.user_attrs,
    }


def _run_ids(plan: AutotunePlan, study: optuna.Study, store: RunStore) -> list[str]:
    """The runs the search measured: those its trials and its defaults record, and those tagged with its id."""
    found = [(study.user_attrs.get(DEFAULTS_ATTR) or {}).get("run_id")]
    found += [(t.user_attrs.get(RECORD_ATTR) or {}).get("run_id") for t in study.trials]
    found += list(store.runs_with_tag(TAG + plan.autotune_id))
    return [i for i in dict.fromkeys(found) if i and store.exists(i)]


def _without_raw(run: dict[str, Any]) -> dict[str, Any]:
    """A run's exchange document without its raw profiler files: the tab reads figures, and a bundle stays small."""
    return {**run, "raw_files": {}}


def bundle(root: Path | str, autotune_id: str, store: RunStore) -> bytes:
    """The gzipped bundle of a stored search (raises ``AutotuneNotFound`` for an unknown id)."""
    plan = load_plan(root, autotune_id)
    study = optuna.load_study(study_name=autotune_id, storage=optuna_storage(root))
    document = {
        "format": BUNDLE_FORMAT,
        "plan": json.loads(plan.to_json()),
        "user_attrs": study.user_attrs,
        "trials": [_trial(t) for t in study.trials],
        "runs": [_without_raw(json.loads(store.export_run(i))) for i in _run_ids(plan, study, store)],
    }
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode())


def write_bundle(root: Path | str, autotune_id: str, store: RunStore, out_dir: Path | str) -> Path:
    """``bundle`` written as ``<out_dir>/autotune/<id>.json.gz``."""
    path = Path(out_dir) / SUBDIR / f"{autotune_id}.json.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bundle(root, autotune_id, store))
    return path


def read_bundle(blob: bytes) -> dict[str, Any]:
    try:
        document = json.loads(gzip.decompress(blob))
    except (OSError, ValueError) as e:
        raise BadAutotuneBundle(f"not gzipped JSON ({e})") from None
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise BadAutotuneBundle(f"its format is not {BUNDLE_FORMAT!r}")
    return document


def install(root: Path | str, store: RunStore, document: dict[str, Any]) -> str:
    """Install one bundle (its runs as sample runs, its plan, its Optuna study); what is there already is kept."""
    plan = AutotunePlan.from_json(json.dumps(document["plan"]))
    for run in document.get("runs", []):
        store.import_run(json.dumps(run).encode(), as_sample=True)
    storage = optuna_storage(root)
    if plan.autotune_id not in optuna.get_all_study_names(storage):
        study = optuna.create_study(direction="minimize", storage=storage, study_name=plan.autotune_id)
        for key, value in document.get("user_attrs", {}).items():
            study.set_user_attr(key, value)
        for t in document.get("trials", []):
            state = optuna.trial.TrialState[t["state"]]
            study.add_trial(
                optuna.trial.create_trial(
                    state=state,
                    value=t["value"] if state == optuna.trial.TrialState.COMPLETE else None,
                    params=t["params"],
                    distributions={
                        k: optuna.distributions.json_to_distribution(d) for k, d in t["distributions"].items()
                    },
                    user_attrs=t["user_attrs"],
                )
            )
    path = Path(root) / AUTOTUNE_DIR / f"{plan.autotune_id}.json"
    if not path.is_file():
        save_plan(root, plan)
    return plan.autotune_id


def import_samples(store: RunStore, samples_dir: Path | str | None = None) -> list[str]:
    """Install the bundled auto-tunes (``<samples>/autotune/*.json.gz``) into ``store``'s data directory, once;
    ``TRTDASH_SAMPLES_DIR`` points elsewhere, as for the sample runs."""
    folder = Path(samples_dir or os.environ.get(SAMPLES_ENV) or SAMPLES_DIR) / SUBDIR
    return [install(store.root, store, read_bundle(p.read_bytes())) for p in sorted(folder.glob("*.json.gz"))]
