"""The HTML report of a link run: what the model learned and what it did.

Charts are Splink's own (Vega-Lite specs from Splink's chart classes), drawn by one shared,
inlined copy of Vega, Vega-Lite and vega-embed so the file works offline and stays small:
match weights and m/u parameters of the model, the distribution of match weights over
scored pairs, waterfall examples, cluster sizes and comparisons per blocking rule. The report
holds no identity value: it is built from the stored model, counts and match weights only.
"""

from __future__ import annotations

import html
import json
import logging
import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from candour.config import Settings
from candour.home import Home
from candour.linkage.outputs import latest_run, run_stats
from candour.store import transaction
from candour.store.linkage import LinkModel


def _model_linker(model: dict[str, Any]) -> Any:
    """A linker over an empty table, to let Splink draw charts of a saved model."""
    from splink import DuckDBAPI, Linker

    columns: set[str] = {"record_key"}
    for comparison in model.get("comparisons", []):
        for level in comparison["comparison_levels"]:
            columns.update(_columns_in(level.get("sql_condition", "")))
            if level.get("tf_adjustment_column"):
                columns.add(level["tf_adjustment_column"])
    schema = [(c, pa.list_(pa.string()) if c.endswith("_groups") else pa.string())
              for c in sorted(columns)]
    empty = pa.table({name: pa.array([], kind) for name, kind in schema})
    db_api = DuckDBAPI()
    frame = db_api.register(empty, table_name="candour_report_empty")
    settings = dict(model)
    settings["linker_uid"] = None
    settings["blocking_rules_to_generate_predictions"] = []
    return Linker(frame, settings, log_level=logging.WARNING, validate_settings=False)


def _columns_in(sql: str) -> set[str]:
    import re

    return {m for m in re.findall(r'"?([a-z_][a-z0-9_]*)_[lr]"?', sql or "")}


def _libraries() -> str:
    """Vega, Vega-Lite and vega-embed, inlined once per report so it works offline."""
    from splink.internals.html_utils import load_chart_libraries

    return "".join(
        f"<script>{source}</script>" for source in load_chart_libraries().values()
    )


def _chart_html(chart: Any, title: str, note: str = "", *, number: int = 0) -> str:
    from splink.internals.html_utils import json_for_html

    caption = f"<p>{html.escape(note)}</p>" if note else ""
    if chart is None:
        body = "<p>(no data)</p>"
    else:
        spec = dict(chart.chart_dict)
        view = spec.setdefault("config", {}).setdefault("view", {})
        view.setdefault("continuousWidth", 300)
        view.setdefault("continuousHeight", 300)
        # One shared copy of the libraries (in the head) and a div plus a small script per
        # chart: inlining Vega in every chart made a report megabytes larger per chart.
        # ``json_for_html`` escapes "<", ">" and "&", so a spec cannot close the script.
        target = f"chart-{number}"
        body = (
            f'<div id="{target}" class="chart"></div><script>'
            f"vegaEmbed('#{target}', {json_for_html(spec, cls=_Encoder)}, {{actions: false}})"
            f".catch(function (e) {{ document.getElementById('{target}').textContent = "
            f"'This chart could not be drawn: ' + e.message; }});</script>"
        )
    return f"<section><h2>{html.escape(title)}</h2>{caption}{body}</section>"


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        # DuckDB can hand back Decimal bins and counts.
        from decimal import Decimal

        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def _bar_chart(records: list[dict[str, Any]], x: str, y: str, title: str) -> Any:
    from splink.internals.charts import SplinkChart

    class _Bars(SplinkChart[dict[str, Any]]):
        @property
        def chart_spec_file(self) -> str:
            return ""

        @property
        def chart_spec(self) -> dict[str, Any]:
            return {
                "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "title": title,
                "width": 600,
                "height": 300,
                "data": {"values": records},
                "mark": "bar",
                "encoding": {
                    "x": {"field": x, "type": "ordinal", "sort": None},
                    "y": {"field": y, "type": "quantitative"},
                    "tooltip": [{"field": x}, {"field": y}],
                },
            }

    return _Bars(records)


def _histogram_chart(histogram: list[list[float]]) -> Any:
    from splink.internals.charts import MatchWeightsHistogramChart

    width = 1.0
    records = [
        {
            "splink__match_weight": lower + width / 2,
            # The chart draws each bar from these two fields.
            "splink_score_bin_low": lower,
            "splink_score_bin_high": lower + width,
            "count_rows": int(count),
            "bin_width": width,
            "truth_value": None,
        }
        for lower, count in histogram
    ]
    for r in records:
        weight = float(r["splink__match_weight"] or 0.0)
        r["splink__match_probability"] = 1 - 1 / (1 + math.pow(2, weight))
    return MatchWeightsHistogramChart(records)


def _waterfall(linker: Any, examples: list[dict[str, Any]]) -> Any:
    if not examples:
        return None
    from splink.internals.charts import WaterfallChart
    from splink.internals.waterfall_chart import records_to_waterfall_data

    settings = linker._settings_obj
    rows = []
    for example in examples:
        row = dict(example)
        for comparison in settings.comparisons:
            for column in comparison._input_columns_used_by_case_statement:
                row.setdefault(column.unquote().name_l, "")
                row.setdefault(column.unquote().name_r, "")
        rows.append(row)
    data = records_to_waterfall_data(rows, settings, True)
    return WaterfallChart(data, True)


def write_report(settings: Settings, out: Path | None = None) -> Path:
    """Write the report of the latest run; returns its path (default: home/reports/)."""
    run = latest_run(settings)
    with transaction(settings) as session:
        stored = session.query(LinkModel).filter(LinkModel.run_id == run.run_id).one()
        model = json.loads(stored.model_json)
    stats = run_stats(run)
    blocking = json.loads(run.blocking_json or "[]")
    linker = _model_linker(model)
    charts = [
        (
            linker.visualisations.match_weights_chart(),
            "Match weights of the model",
            "How much each level of each comparison moves the score (log2 Bayes factor).",
        ),
        (
            linker.visualisations.m_u_parameters_chart(),
            "m and u parameters",
            "m: share of true matches at each level; u: share of non-matches (estimated "
            "by random sampling); m is estimated by expectation maximisation.",
        ),
        (
            _histogram_chart(stats.get("histogram", [])),
            "Match-weight distribution",
            f"Scored pairs at or above the review band ({run.review_low}); the threshold "
            f"is {run.threshold} as a match probability.",
        ),
        (
            _waterfall(linker, stats.get("examples", [])),
            "Waterfall examples",
            "The weakest linked and strongest unlinked pairs, comparison by comparison.",
        ),
        (
            _bar_chart(
                [{"records": str(size), "persons": count}
                 for size, count in stats.get("cluster_sizes", [])],
                "records",
                "persons",
                "Records per person",
            ),
            "Cluster sizes",
        ),
        (
            _bar_chart(
                [{"rule": b["rule"], "comparisons": b["marginal"]} for b in blocking],
                "rule",
                "comparisons",
                "Comparisons generated per blocking rule",
            ),
            "Comparisons per blocking rule",
            "; ".join(f"{b['rule']}: {b['note']}" for b in blocking if b.get("note")),
        ),
    ]
    sections = [
        _chart_html(chart, title, *note, number=i) for i, (chart, title, *note) in enumerate(charts)
    ]
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in stats.get("timings", {}).items())
    summary = (
        f"<p>Run <b>{html.escape(run.run_id)}</b> on {html.escape(run.engine)}: "
        f"{run.records:,} records linked to {run.persons:,} persons; "
        f"{run.comparisons:,} comparisons; {run.linked_pairs:,} linked pairs; "
        f"{run.review_pairs:,} pairs waiting for review. Person ids kept {run.kept_ids:,}, "
        f"new {run.new_ids:,}; merges {run.merges}, splits {run.splits}, retired {run.retired}."
        f"</p><p>Timings: {html.escape(timings)}.</p>"
    )
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Linkage report {html.escape(run.run_id)}</title>"
        "<style>body{font-family:Arial,sans-serif;max-width:960px;margin:2em auto;}"
        "section{margin-top:2em}.chart{width:100%}</style>"
        f"{_libraries()}</head><body>"
        f"<h1>Linkage report</h1>{summary}{''.join(sections)}</body></html>"
    )
    if out is None:
        reports = Home(settings.home).reports
        reports.mkdir(parents=True, exist_ok=True)
        out = reports / f"linkage-{run.run_id}.html"
    out.write_text(document, encoding="utf-8")
    return out
