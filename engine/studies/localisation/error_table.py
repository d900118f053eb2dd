"""The error-growth table and how it reads: per unit and variant, how far a lower precision's output is from fp32
(``COLUMNS``), the first unit that crosses the tolerance, the worst ones, and the activation against its format's
range in words. Measured by ``error_growth``; pure data (pandas, no torch), JSON-ready for a bundled localisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

DEFAULT_TOLERANCE = 0.05  # relative L2 against fp32 (the ladder's default tolerance)
DEFAULT_MAX_SAMPLES = 2
WORST = 10
# largest finite value of each format
FORMAT_MAX = {
    "fp16": 65504.0,
    "bf16": 3.3895313892515355e38,
    "fp32": 3.4028234663852886e38,
    "fp8": 448.0,
    "int8": 127.0,
}
FORMAT_NAMES = {"fp16": "fp16", "bf16": "bf16", "fp32": "fp32", "fp8": "FP8 E4M3", "int8": "INT8"}
# formats whose largest value is a hard limit (overflow to inf); quantized ones are scaled by their calibration
UNSCALED = ("fp16", "bf16", "fp32")
COLUMNS = [
    "order",
    "unit",
    "module",
    "layer_type",
    "variant",
    "rel_err",
    "ref_max_abs",
    "max_abs",
    "in_max_abs",
    "act_max",
    "format",
    "format_max",
    "range_ratio",
    "calib_amax",
    "nan",
    "inf",
    "quantized",
    "crosses",
]
# measured magnitudes: floats (NaN where not measured) whatever the rows or JSON held
FLOAT_COLUMNS = (
    "rel_err",
    "ref_max_abs",
    "max_abs",
    "in_max_abs",
    "act_max",
    "format_max",
    "range_ratio",
    "calib_amax",
)


def with_float_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``FLOAT_COLUMNS`` as floats (None and non-numbers become NaN)."""
    for col in FLOAT_COLUMNS:
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    return table


@dataclass
class ErrorGrowth:
    """Per unit and variant, how far the output is from fp32, in execution order (``COLUMNS``)."""

    table: pd.DataFrame
    model: str
    variants: list[str]
    tolerance: float = DEFAULT_TOLERANCE
    samples: int = DEFAULT_MAX_SAMPLES
    device: str = "cpu"
    kept: list[str] = field(default_factory=list)  # modules kept in higher precision in every variant
    calibration: str = ""

    def rows(self, variant: str) -> pd.DataFrame:
        return self.table[self.table["variant"] == variant].sort_values("order")

    def first_crossing(self, variant: str) -> pd.Series | None:
        """The first unit whose output is beyond the tolerance, holds NaN/inf, or overflows its format."""
        crossing = self.rows(variant)
        crossing = crossing[crossing["crosses"]]
        return None if crossing.empty else crossing.iloc[0]

    def worst(self, variant: str, n: int = WORST) -> pd.DataFrame:
        """The ``n`` units furthest from fp32 (NaN/inf first), in that order."""
        rows = self.rows(variant).copy()
        rows["_key"] = rows["rel_err"].where(rows["nan"] + rows["inf"] == 0, math.inf).fillna(math.inf)
        return rows.sort_values(["_key", "order"], ascending=[False, True]).drop(columns="_key").head(n)

    def unit(self, module: str, variant: str | None = None) -> pd.Series | None:
        """A module's first row (of ``variant``, else of the first variant)."""
        rows = self.rows(variant or self.variants[0])
        hit = rows[rows["module"] == module]
        return None if hit.empty else hit.iloc[0]

    def crossing_text(self, variant: str) -> str:
        """E.g. "fp16: first beyond rel. L2 0.05 at layer3.4.conv2 (Conv2d): rel. L2 0.12, activation max 2.1e4 of
        fp16's 65504"."""
        row = self.first_crossing(variant)
        if row is None:
            worst = self.worst(variant, 1)
            tail = "" if worst.empty else f" (largest: {fmt_err(worst.iloc[0])} at {worst.iloc[0]['unit']})"
            return f"{variant}: every unit stays within rel. L2 {self.tolerance:g} of fp32{tail}."
        return (
            f"{variant}: first beyond rel. L2 {self.tolerance:g} at {row['unit']} ({row['layer_type']}): "
            f"{fmt_err(row)}, {range_text(row)}."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; figures kept to 6 significant digits (a bundled localisation stays a few tens of KB)."""
        table = self.table.copy()
        for col in table.columns:
            if table[col].dtype == float:
                table[col] = table[col].map(lambda v: float(f"{v:.6g}") if math.isfinite(v) else None)
        return {
            "table": table.to_dict(orient="split", index=False),
            "model": self.model,
            "variants": self.variants,
            "tolerance": self.tolerance,
            "samples": self.samples,
            "device": self.device,
            "kept": self.kept,
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ErrorGrowth:
        t = d["table"]
        table = pd.DataFrame(t["data"], columns=t["columns"])
        table = with_float_columns(table)
        # JSON has no NaN/inf: an error that was not finite reads back as null; its NaN/inf counts say so
        nonfinite = (table["nan"] + table["inf"]) > 0
        table.loc[nonfinite & table["rel_err"].isna(), "rel_err"] = math.inf
        return cls(
            table,
            d["model"],
            list(d["variants"]),
            d.get("tolerance", DEFAULT_TOLERANCE),
            d.get("samples", DEFAULT_MAX_SAMPLES),
            d.get("device", "cpu"),
            list(d.get("kept", [])),
            d.get("calibration", ""),
        )


def fmt_err(row: pd.Series) -> str:
    nonfinite = int(row["nan"]) + int(row["inf"])
    if nonfinite:
        return f"{int(row['nan'])} NaN and {int(row['inf'])} inf values"
    return f"rel. L2 {row['rel_err']:.3g}"


def range_text(row: pd.Series) -> str:
    """E.g. "input activation max 2.1e+04 > 448 of FP8 E4M3" (a quantized unit's input against the format its
    scale maps onto), "activation max 7e+04 > 65504 of fp16"."""
    where = "input activation" if row["format"] not in UNSCALED else "activation"
    sign = ">" if row["act_max"] > row["format_max"] else "≤"
    name = FORMAT_NAMES.get(row["format"], row["format"])
    return f"{where} max {row['act_max']:.3g} {sign} {row['format_max']:.6g} of {name}"
