"""Prediction and clustering: scored pairs -> links -> clusters of records, one per person.

The rules, in order (docs/linkage.md):

1. Splink scores every blocked pair; pairs below the review band's lower edge are discarded.
2. A reviewer's decision overrides the model: "match" links the pair whatever its score,
   "non-match" never links it directly, and the two records are kept apart (below).
3. A pair at or above the threshold is linked, except when the given names disagree outright
   and no exact identifier agrees: twins and relatives share a surname, a date of birth and
   an address, and the model, which treats fields as independent, over-counts that. Such
   pairs go to clerical review instead.
4. Links are clustered by connected components (Splink). A cluster holding two records a
   reviewer said are different people is re-clustered greedily, strongest link first, never
   joining the two sides.
5. Pairs in the review band that were not linked, not decided, and not already in one cluster
   go to the review queue.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from candour.linkage.engines import Engine

# The guards: comparisons whose outright disagreement (their lowest, "else" level) stops a
# pair being linked automatically unless an exact identifier agrees. Value: the guard's code
# (kept in the ``guarded`` column) and the review reason it becomes.
GUARDS: dict[str, tuple[int, str]] = {
    "given_name": (1, "names-disagree"),
    "date_of_birth": (2, "dates-disagree"),
}
GUARD_REASONS = {code: reason for code, reason in GUARDS.values()}
IDENTIFIER_COMPARISONS_PREFIXES = ("nhs_number", "id_")
HISTOGRAM_BIN_WIDTH = 1.0


@dataclass(frozen=True)
class Decision:
    """A reviewer's standing decision about a pair (keys in sorted order)."""

    left: str
    right: str
    match: bool


@dataclass
class Clustering:
    """The outcome of prediction and clustering."""

    clusters: dict[str, str]  # record_key -> cluster label
    review: list[dict[str, Any]]  # candidate pairs for clerical review, with weights
    examples: list[dict[str, Any]]  # linked and unlinked pairs for waterfall charts
    histogram: list[tuple[float, int]]  # (bin lower edge, pairs) for match weights
    predicted_pairs: int = 0
    linked_pairs: int = 0
    guarded_pairs: int = 0
    conflicts_resolved: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


def pair(a: str, b: str) -> tuple[str, str]:
    """A pair of record keys in canonical (sorted) order."""
    return (a, b) if a <= b else (b, a)


def _exact_gamma(model: dict[str, Any], name: str) -> int | None:
    for comparison in model["comparisons"]:
        if comparison["output_column_name"] == name:
            levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
            return len(levels) - 1
    return None


def _guard_sql(model: dict[str, Any], columns: set[str]) -> str:
    """SQL giving, per pair, the code of the guard that holds it back (0 for none).

    Twins and relatives share a surname, an address and often a date of birth or even a
    given name (father and son); the model treats fields as independent and over-counts
    what households share. A pair whose given names, or whose dates of birth, disagree
    outright is therefore never linked automatically unless an exact identifier agrees.
    The "else" level of every Splink comparison has gamma 0.
    """
    exact_ids = []
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        if name.startswith(IDENTIFIER_COMPARISONS_PREFIXES) and f"gamma_{name}" in columns:
            exact_ids.append(f"gamma_{name} = {_exact_gamma(model, name)}")
    whens = [
        f"when gamma_{name} = 0 then {code}"
        for name, (code, _reason) in GUARDS.items()
        if f"gamma_{name}" in columns
    ]
    if not whens:
        return "0"
    identifier = f"when {' OR '.join(exact_ids)} then 0 " if exact_ids else ""
    return f"(case {identifier}{' '.join(whens)} else 0 end)"


def _weights_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith(("gamma_", "mw_"))]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent.setdefault(x, x)
        while parent != x:
            grand = self.parent.setdefault(parent, parent)
            self.parent[x] = grand
            x, parent = parent, grand
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def constrained_clusters(
    nodes: list[str], edges: list[tuple[str, str, float]], apart: set[tuple[str, str]]
) -> dict[str, str]:
    """Greedy clustering, strongest edge first, never joining two records kept ``apart``.

    Returns record -> cluster label (the smallest record key in the cluster).
    """
    members: dict[str, set[str]] = {n: {n} for n in nodes}
    uf = _UnionFind()
    for n in nodes:
        uf.find(n)
    blocked: dict[str, set[str]] = defaultdict(set)
    for a, b in apart:
        blocked[a].add(b)
        blocked[b].add(a)
    for a, b, _p in sorted(edges, key=lambda e: (-e[2], e[0], e[1])):
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        group_a, group_b = members[ra], members[rb]
        small, large = (group_a, group_b) if len(group_a) <= len(group_b) else (group_b, group_a)
        if any(blocked[x] & large for x in small):
            continue
        uf.union(ra, rb)
        root = uf.find(ra)
        members[root] = group_a | group_b
    labels: dict[str, str] = {}
    for n in nodes:
        root = uf.find(n)
        labels[n] = min(members[root])
    return labels


def _table(engine: Engine, sql: str) -> pa.Table:
    frame = engine.db_api.query_sql(sql)
    try:
        result: pa.Table = frame.as_pyarrow_table()
    finally:
        frame.drop_table_from_database_and_remove_from_cache()
    return result


def predict_and_cluster(
    engine: Engine,
    linker: Any,
    model: dict[str, Any],
    *,
    threshold: float,
    review_low: float,
    decisions: list[Decision],
    max_review: int = 5000,
    conflict_probability: float = 0.01,
) -> Clustering:
    """Score pairs, apply decisions and the twins guard, cluster, and find pairs to review."""
    steps: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        steps[name] = now - mark
        mark = now

    predictions = linker.inference.predict(
        threshold_match_probability=review_low, warning_mode="never"
    )
    name = predictions.physical_name
    columns = {c.unquote().name for c in predictions.columns}
    guard = _guard_sql(model, columns)
    lap("score pairs")

    decisions_table = pa.table(
        {
            "d_left": [d.left for d in decisions],
            "d_right": [d.right for d in decisions],
            "d_match": [1.0 if d.match else 0.0 for d in decisions],
        },
        schema=pa.schema([("d_left", pa.string()), ("d_right", pa.string()),
                          ("d_match", pa.float64())]),
    )
    registered = engine.register_arrow(decisions_table, "candour_decisions")
    decided = registered.physical_name
    # Predictions order each pair by Splink's own rule; decisions use sorted keys.
    lo = "least(p.record_key_l, p.record_key_r)"
    hi = "greatest(p.record_key_l, p.record_key_r)"
    edges_sql = f"""
        select p.record_key_l, p.record_key_r,
               coalesce(d.d_match, p.match_probability) as match_probability,
               case when d.d_match is null then {guard} else 0 end as guarded
        from {name} p
        left join {decided} d on d.d_left = {lo} and d.d_right = {hi}
    """
    edges_frame = engine.db_api.query_sql(edges_sql)
    edges = edges_frame.physical_name
    link_sql = f"""
        select record_key_l, record_key_r, match_probability from {edges}
        where match_probability >= {threshold} and guarded = 0
        union all
        select d_left as record_key_l, d_right as record_key_r, 1.0 as match_probability
        from {decided} d
        where d.d_match = 1.0
          and d.d_left in (select record_key from {engine.identities.physical_name})
          and d.d_right in (select record_key from {engine.identities.physical_name})
    """
    links = engine.db_api.query_sql(link_sql)
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(links, threshold)
    cluster_table = _table(
        engine, f"select record_key, cluster_id from {clustered.physical_name}"
    )
    clusters = dict(
        zip(
            cluster_table["record_key"].to_pylist(),
            (str(c) for c in cluster_table["cluster_id"].to_pylist()),
            strict=True,
        )
    )
    lap("cluster")
    counts = _table(
        engine,
        f"select count(*) as n, sum(case when guarded > 0 then 1 else 0 end) as g, "
        f"sum(case when match_probability >= {threshold} and guarded = 0 then 1 else 0 end) "
        f"as linked from {edges}",
    ).to_pylist()[0]
    conflicts = _within_cluster_conflicts(engine, linker, model, clustered, conflict_probability)
    resolved = _resolve_conflicts(engine, links.physical_name, clusters, decisions, conflicts)
    lap("re-score clusters")

    weight_columns = _weights_columns(sorted(columns))
    select_weights = ", ".join(f"p.{c}" for c in weight_columns)
    review_rows = _table(
        engine,
        f"""
        select p.record_key_l, p.record_key_r, p.match_weight, p.match_probability,
               e.guarded, {select_weights}
        from {name} p join {edges} e
          on e.record_key_l = p.record_key_l and e.record_key_r = p.record_key_r
        left join {decided} d on d.d_left = {lo} and d.d_right = {hi}
        where d.d_match is null
          and (p.match_probability < {threshold} or e.guarded > 0)
        order by abs(p.match_weight) asc
        limit {max_review * 4}
        """,
    ).to_pylist()
    review = [
        r for r in review_rows if clusters.get(r["record_key_l"]) != clusters.get(r["record_key_r"])
    ][:max_review]
    examples = _table(
        engine,
        f"""
        (select match_weight, match_probability, {select_weights.replace("p.", "")}
         from {name} where match_probability >= {threshold} order by match_weight limit 3)
        union all
        (select match_weight, match_probability, {select_weights.replace("p.", "")}
         from {name} where match_probability < {threshold} order by match_weight desc limit 3)
        """,
    ).to_pylist()
    histogram_rows = _table(
        engine,
        f"select floor(match_weight / {HISTOGRAM_BIN_WIDTH}) * {HISTOGRAM_BIN_WIDTH} as bin, "
        f"count(*) as pairs from {name} group by 1 order by 1",
    ).to_pylist()
    histogram = [(float(r["bin"]), int(r["pairs"])) for r in histogram_rows]
    for frame in (clustered, links, edges_frame, predictions):
        frame.drop_table_from_database_and_remove_from_cache()
    lap("review queue and charts")
    return Clustering(
        clusters=clusters,
        review=review,
        examples=examples,
        histogram=histogram,
        predicted_pairs=int(counts["n"] or 0),
        linked_pairs=int(counts["linked"] or 0),
        guarded_pairs=int(counts["g"] or 0),
        conflicts_resolved=resolved,
        stats={"timings": steps},
    )


def _tf_columns(model: dict[str, Any]) -> list[str]:
    """The columns the model adjusts for term frequency."""
    found = {
        str(level["tf_adjustment_column"])
        for comparison in model["comparisons"]
        for level in comparison["comparison_levels"]
        if level.get("tf_adjustment_column")
    }
    return sorted(found)


def _within_cluster_conflicts(
    engine: Engine, linker: Any, model: dict[str, Any], clustered: Any, cut: float
) -> list[tuple[str, str]]:
    """Pairs in one cluster that the model says are clearly different people.

    Connected components chain: a record without a date of birth can link a father and a son
    of the same name at one address. Scoring every pair inside each cluster of three or more
    finds such chains; the pairs scoring below ``cut`` are kept apart when re-clustering.
    Only the records of such clusters are scored (a pair was already scored by the run), with
    the run's own term-frequency tables, which were counted over every record.
    """
    from splink import Linker

    chains = engine.db_api.query_sql(
        f"select * from {clustered.physical_name} where cluster_id in "
        f"(select cluster_id from {clustered.physical_name} "
        f"group by cluster_id having count(*) >= 3)"
    )
    try:
        sizes = _table(engine, f"select count(*) as n from {chains.physical_name}").to_pylist()
        if not sizes[0]["n"]:
            return []
        settings = dict(model)
        settings["blocking_rules_to_generate_predictions"] = [
            {"blocking_rule": "l.cluster_id = r.cluster_id"}
        ]
        settings["linker_uid"] = None
        frame = engine.db_api.register(
            chains.physical_name, table_name=f"clustered_{engine.next_id()}"
        )
        import logging

        checker = Linker(frame, settings, log_level=logging.WARNING)
        for column in _tf_columns(model):
            # Frequencies over the whole home, as the run scored with (not the chains').
            counted = linker.table_management.compute_tf_table(column)
            checker.table_management.register_term_frequency_lookup(counted, column)
        scored = checker.inference.predict(warning_mode="never")
        rows = _table(
            engine,
            f"select record_key_l, record_key_r from {scored.physical_name} "
            f"where match_probability < {cut}",
        ).to_pylist()
        scored.drop_table_from_database_and_remove_from_cache()
    finally:
        chains.drop_table_from_database_and_remove_from_cache()
    return [pair(r["record_key_l"], r["record_key_r"]) for r in rows]


def _resolve_conflicts(
    engine: Engine,
    links: str,
    clusters: dict[str, str],
    decisions: list[Decision],
    conflicts: list[tuple[str, str]],
) -> int:
    """Split clusters holding records known to differ; returns how many were re-formed."""
    # A reviewer's "match" outranks the model's view that two records differ.
    matched = {(d.left, d.right) for d in decisions if d.match}
    apart_pairs = {(d.left, d.right) for d in decisions if not d.match}
    apart_pairs |= set(conflicts) - matched
    conflicted: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for left, right in apart_pairs:
        ca, cb = clusters.get(left), clusters.get(right)
        if ca is not None and ca == cb:
            conflicted[ca].add((left, right))
    if not conflicted:
        return 0
    by_cluster: dict[str, list[str]] = defaultdict(list)
    for key, label in clusters.items():
        if label in conflicted:
            by_cluster[label].append(key)
    # Every conflicted cluster's links in one join (a query per cluster scanned all the links
    # once per cluster: hundreds of scans at a million records).
    members_table = pa.table(
        {
            "m_key": [key for members in by_cluster.values() for key in members],
            "m_label": [label for label, members in by_cluster.items() for _ in members],
        },
        schema=pa.schema([("m_key", pa.string()), ("m_label", pa.string())]),
    )
    members_name = engine.register_arrow(members_table, "candour_conflicted").physical_name
    rows = _table(
        engine,
        f"select a.m_label as label, l.record_key_l, l.record_key_r, l.match_probability "
        f"from {links} l join {members_name} a on a.m_key = l.record_key_l "
        f"join {members_name} b on b.m_key = l.record_key_r and b.m_label = a.m_label",
    ).to_pylist()
    edges_by_cluster: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for r in rows:
        edges_by_cluster[r["label"]].append(
            (r["record_key_l"], r["record_key_r"], float(r["match_probability"]))
        )
    for label, members in by_cluster.items():
        relabelled = constrained_clusters(members, edges_by_cluster[label], conflicted[label])
        for key, sub in relabelled.items():
            clusters[key] = f"{label}/{sub}"
    return len(by_cluster)


def match_weight_to_probability(weight: float) -> float:
    """Splink's conversion of a match weight (log2 Bayes factor) to a probability."""
    return 1.0 - 1.0 / (1.0 + math.pow(2.0, weight))
