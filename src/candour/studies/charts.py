"""The studies' charts (matplotlib, PNG), drawn only from what the report may show: published
counts, estimates, and group profiles after disclosure control."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from candour.studies.report import Chart

Painter = Callable[[Path], None]


def _pyplot() -> Any:
    import matplotlib

    # A headless backend: studies run in the CLI, tests and servers without a display.
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    _pyplot().close(fig)


def draw_home_safety(details: dict[str, Any]) -> list[tuple[Chart, Painter]]:
    """Falls before/after by cohort, and the estimate per stratum with the pooled one."""
    totals = details["totals"]
    per_stratum = details["per_stratum"]

    def before_after(path: Path) -> None:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        cohorts = [c for c in ("visited", "comparison") if c in totals]
        for i, cohort in enumerate(cohorts):
            before = totals[cohort]["before"]
            after = totals[cohort]["after"]
            ratio = after / before if before else 0.0
            ax.bar([i - 0.18], [1.0], width=0.34, color="#1d70b8",
                   label="Year before" if i == 0 else None)
            ax.bar([i + 0.18], [ratio], width=0.34, color="#f47738",
                   label="Year after" if i == 0 else None)
            ax.text(i + 0.18, ratio + 0.02, f"{ratio:.2f}", ha="center")
        ax.set_xticks(range(len(cohorts)), [c.capitalize() for c in cohorts])
        ax.set_ylabel("Falls relative to the year before")
        ax.set_title("A&E attendances for falls, before and after a visit")
        ax.legend(loc="lower right")
        _save(fig, path)

    def forest(path: Path) -> None:
        plt = _pyplot()
        rows = [*per_stratum, {"stratum": "All (pooled)", **details["pooled"]}]
        fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(rows) + 1.4))
        for y, row in enumerate(reversed(rows)):
            colour = "#0b0c0c" if row["stratum"] == "All (pooled)" else "#505a5f"
            ax.errorbar(
                [row["estimate"]],
                [y],
                xerr=[[row["estimate"] - row["ci_low"]], [row["ci_high"] - row["estimate"]]],
                fmt="o",
                color=colour,
                capsize=3,
            )
        ax.axvline(0.0, color="#b1b4b6", linestyle="--")
        ax.set_yticks(range(len(rows)), [r["stratum"] for r in reversed(rows)])
        ax.set_xlabel("Relative change in falls after a visit (95% CI)")
        ax.set_title("Estimate by stratum")
        _save(fig, path)

    return [
        (
            Chart(
                "falls-before-after.png",
                "Falls in the year after relative to the year before, by cohort",
                "Bar chart: for visited people and the comparison group, falls in the year after "
                "the visit as a ratio of falls in the year before.",
            ),
            before_after,
        ),
        (
            Chart(
                "estimate-by-stratum.png",
                "The estimated relative change in falls, by stratum and pooled, with 95% CIs",
                "Forest plot of the estimated relative change in falls after a visit in each "
                "stratum and pooled, with 95% confidence intervals and a line at no change.",
            ),
            forest,
        ),
    ]


def draw_family_needs(details: dict[str, Any]) -> list[tuple[Chart, Painter]]:
    """Each group's size and its average indicators (published values only)."""
    profile = details["profile"]
    names: list[str] = details["indicators"]

    def sizes(path: Path) -> None:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        groups = [str(r["group"]) for r in profile]
        values = [float(r["households"]) if r["households"] is not None else 0.0
                  for r in profile]
        ax.barh(groups, values, color="#1d70b8")
        ax.invert_yaxis()
        ax.set_xlabel("Households (rounded; groups below the threshold not shown)")
        ax.set_title("Households in each group of need")
        _save(fig, path)

    def heatmap(path: Path) -> None:
        plt = _pyplot()
        import numpy as np

        from candour.studies.family_needs import TITLES

        grid = np.array(
            [[float(r[n]) if r.get(n) is not None else np.nan for n in names] for r in profile]
        )
        fig, ax = plt.subplots(figsize=(8.0, 0.5 * len(profile) + 3.8))
        image = ax.imshow(np.log1p(grid), aspect="auto", cmap="Blues")
        ax.set_yticks(range(len(profile)), [str(r["group"]) for r in profile])
        ax.set_xticks(range(len(names)), [TITLES[n] for n in names], rotation=60, ha="right",
                      fontsize=7)
        fig.colorbar(image, ax=ax, label="log(1 + average days per household)")
        ax.set_title("What each group's needs look like")
        _save(fig, path)

    return [
        (
            Chart(
                "group-sizes.png",
                "Households in each group of need",
                "Horizontal bar chart of the number of households in each group.",
            ),
            sizes,
        ),
        (
            Chart(
                "group-profiles.png",
                "Average contacts per household in each group",
                "Heat map: one row per group, one column per kind of contact; darker means more "
                "days with that contact per household.",
            ),
            heatmap,
        ),
    ]


def draw_hmo_risk(details: dict[str, Any]) -> list[tuple[Chart, Painter]]:
    """Properties by risk band and complaint (published counts only)."""
    bands = details["bands"]

    def by_band(path: Path) -> None:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        labels = sorted({str(r["band"]) for r in bands})
        kinds = sorted({str(r["complaint"]) for r in bands})
        width = 0.8 / max(1, len(kinds))
        for j, kind in enumerate(kinds):
            values = []
            for label in labels:
                match = [r for r in bands if r["band"] == label and r["complaint"] == kind]
                value = match[0]["properties"] if match else None
                values.append(float(value) if value is not None else 0.0)
            ax.bar([i + j * width for i in range(len(labels))], values, width=width, label=kind)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("Properties (log scale)")
        ax.set_title("Properties by HMO risk band and housing complaints")
        ax.legend(fontsize=8)
        _save(fig, path)

    return [
        (
            Chart(
                "risk-bands.png",
                "Properties by risk band and whether they had a housing complaint",
                "Bar chart, log scale: the number of properties in each risk band, split by "
                "whether the property had a housing complaint in the last 12 months.",
            ),
            by_band,
        )
    ]
