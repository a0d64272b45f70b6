"""The linkage model, built automatically from the identity fields the records actually hold.

:func:`build_model` looks at which fields are present and returns a :class:`ModelSpec`: Splink
comparisons, candidate blocking rules, EM training rules and Candour's own knobs (threshold,
review band). A settings file (YAML or JSON, see :class:`Overrides` and docs/linkage.md) can
replace or drop any comparison, replace the blocking or training rules, set any top-level
Splink setting, and change the threshold and review band.

Comparisons are expressed with Splink's dialect-neutral creators, so the same model runs on
DuckDB and on Spark.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from splink import ColumnExpression, SettingsCreator, block_on
from splink import comparison_level_library as cll
from splink import comparison_library as cl

from candour.errors import CandourError
from candour.linkage.fields import (
    BIRTH_YEAR,
    FAMILY_INITIAL,
    GIVEN_GROUPS,
    GIVEN_INITIAL,
    IDENTIFIER_PREFIX,
)

# The default threshold: pairs at or above this match probability are linked. Chosen on the
# synthetic county (docs/linkage.md): it puts pairwise precision above 0.995 while keeping
# recall high; the review band below it is where a person's judgement adds the most.
DEFAULT_THRESHOLD = 0.99
DEFAULT_REVIEW_LOW = 0.5
# Bounding the work: no blocking rule may add more than this many comparisons per record.
# Comparisons within a block grow with the square of its size, so a rule on common values
# (given + family name) that adds five per record at 100,000 people adds fourteen at 280,000;
# at eight, such a rule is tightened (with birth year) only once the county is large enough
# for it to dominate the run (docs/linkage.md, "Blocking").
DEFAULT_MAX_COMPARISONS_PER_RECORD = 8.0

_POSTCODE_SECTOR = "^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? [0-9]"
_POSTCODE_DISTRICT = "^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?"

# Splink's own dialect-neutral SQL for a day/month swap on ISO dates (YYYY-MM-DD).
_DOB_SWAP = (
    "substr(date_of_birth_l, 1, 4) = substr(date_of_birth_r, 1, 4) AND "
    "substr(date_of_birth_l, 6, 2) = substr(date_of_birth_r, 9, 2) AND "
    "substr(date_of_birth_l, 9, 2) = substr(date_of_birth_r, 6, 2)"
)


class ModelError(CandourError):
    """The model or its settings file is not usable."""


Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class Overrides(BaseModel):
    """A linkage settings file. Every key is optional; unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: Probability | None = None
    review_band: tuple[Probability, Probability] | None = None
    max_comparisons_per_record: Annotated[float, Field(gt=0)] | None = None
    comparisons: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    """Comparison output name -> a Splink comparison dict (replaces or adds), or null (drops)."""
    blocking_rules: list[str | dict[str, Any]] | None = None
    """Replace the automatic prediction blocking rules (Splink SQL, e.g. ``l.x = r.x``)."""
    training_blocking_rules: list[str | dict[str, Any]] | None = None
    """Replace the automatic EM training blocking rules."""
    u_max_pairs: Annotated[float, Field(gt=0)] | None = None
    em_max_pairs: Annotated[float, Field(gt=0)] | None = None
    deterministic_rules: list[str | dict[str, Any]] | None = None
    deterministic_recall: Probability | None = None
    splink: dict[str, Any] = Field(default_factory=dict)
    """Any other top-level Splink setting, e.g. ``em_convergence`` or ``max_iterations``."""

    @model_validator(mode="after")
    def _band_below_threshold(self) -> Overrides:
        if self.review_band is not None and self.review_band[0] > self.review_band[1]:
            raise ValueError("review_band must be [low, high] with low <= high")
        forbidden = {"link_type", "unique_id_column_name", "comparisons"} & set(self.splink)
        if forbidden:
            raise ValueError(f"splink.{sorted(forbidden)[0]} is fixed by Candour")
        return self


def load_overrides(path: Path | None) -> Overrides:
    """Read a settings file (YAML or JSON); no file means no overrides."""
    if path is None:
        return Overrides()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: no such settings file") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid YAML or JSON: {exc}") from exc
    if data is None:
        return Overrides()
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a mapping of settings")
    try:
        return Overrides.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ModelError(f"{path}: {where}: {first['msg']}") from None


@dataclass(frozen=True)
class CandidateRule:
    """A blocking rule the model would like, and columns that can tighten it if too loose."""

    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        """A readable name, e.g. ``date_of_birth+family_initial``."""
        return "+".join(self.columns)


@dataclass
class ModelSpec:
    """Everything needed to train and run one linkage model."""

    fields: list[str]
    comparisons: list[Any]  # Splink ComparisonCreator objects or comparison dicts
    candidate_rules: list[CandidateRule]
    fixed_blocking_rules: list[str | dict[str, Any]] | None
    training_rules: list[Any]
    deterministic_rules: list[Any]
    threshold: float = DEFAULT_THRESHOLD
    review_low: float = DEFAULT_REVIEW_LOW
    max_comparisons_per_record: float = DEFAULT_MAX_COMPARISONS_PER_RECORD
    u_max_pairs: float = 5e6
    em_max_pairs: float = 2e6
    deterministic_recall: float = 0.8
    splink_extra: dict[str, Any] = field(default_factory=dict)

    def settings(self, blocking_rules: list[Any]) -> SettingsCreator:
        """The Splink settings for this model with the given prediction blocking rules."""
        extra = dict(self.splink_extra)
        return SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="record_key",
            comparisons=list(self.comparisons),
            blocking_rules_to_generate_predictions=list(blocking_rules),
            # Matching columns bring the comparison vectors (gamma) into predictions; the
            # table lives only in the workspace, and only keys and weights are read out.
            retain_matching_columns=True,
            retain_intermediate_calculation_columns=True,
            **extra,
        )


def _name_comparison(present: set[str]) -> Any:
    levels: list[Any] = [
        cll.NullLevel("given_name"),
        cll.ExactMatchLevel("given_name").configure(tf_adjustment_column="given_name"),
        cll.ArrayIntersectLevel(GIVEN_GROUPS, 1).configure(
            label_for_charts="Nickname or formal name of each other"
        ),
        cll.JaroWinklerLevel("given_name", 0.92),
        # Jaro-Winkler is harsh on short names: a transposition in "Sam" (Sma) or a dropped
        # letter in "Amy" (Ay) scores below 0.7. One edit catches those typos.
        cll.DamerauLevenshteinLevel("given_name", 1).configure(
            label_for_charts="One letter different or transposed"
        ),
    ]
    if "middle_name" in present:
        levels.append(
            cll.CustomLevel(
                "given_name_l = middle_name_r OR middle_name_l = given_name_r",
                label_for_charts="Given name is the other's middle name",
                base_dialect_str="duckdb",
            )
        )
    if "family_name" in present:
        levels.append(
            cll.CustomLevel(
                "given_name_l = family_name_r AND family_name_l = given_name_r",
                label_for_charts="Given and family names swapped",
                base_dialect_str="duckdb",
            )
        )
    levels += [
        cll.JaroWinklerLevel("given_name", 0.88),
        cll.JaroWinklerLevel("given_name", 0.7),
        cll.ElseLevel(),
    ]
    return cl.CustomComparison(
        output_column_name="given_name",
        comparison_levels=levels,
        comparison_description="Given name: exact, nickname, Jaro-Winkler, swaps",
    )


def _location_comparison(present: set[str]) -> Any | None:
    # Postcode and address say the same thing twice: people at one address share both. As
    # two comparisons they would be double counted (Splink assumes independence), and every
    # household would look like one person, so they are one comparison with ordered levels.
    has_postcode, has_address = "postcode" in present, "address" in present
    if has_postcode and not has_address:
        return cl.PostcodeComparison("postcode")
    if not has_postcode and not has_address:
        return None
    levels: list[Any] = []
    if has_postcode:
        levels.append(
            cll.And(cll.NullLevel("address"), cll.NullLevel("postcode")).configure(
                is_null_level=True, label_for_charts="No address or postcode to compare"
            )
        )
    else:
        levels.append(cll.NullLevel("address"))
    levels.append(
        cll.ExactMatchLevel("address").configure(
            tf_adjustment_column="address", label_for_charts="Same address"
        )
    )
    if has_postcode:
        levels.append(
            cll.ExactMatchLevel("postcode").configure(label_for_charts="Same postcode")
        )
    levels.append(
        cll.JaroWinklerLevel("address", 0.9).configure(label_for_charts="Similar address")
    )
    if has_postcode:
        postcode = ColumnExpression("postcode")
        levels += [
            cll.ExactMatchLevel(postcode.regex_extract(_POSTCODE_SECTOR)).configure(
                label_for_charts="Same postcode sector"
            ),
            cll.ExactMatchLevel(postcode.regex_extract(_POSTCODE_DISTRICT)).configure(
                label_for_charts="Same postcode district"
            ),
        ]
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(
        output_column_name="address" if not has_postcode else "location",
        comparison_levels=levels,
        comparison_description="Address and postcode, as one piece of evidence",
    )


def _comparisons(present: set[str], identifiers: list[str]) -> list[Any]:
    comparisons: list[Any] = []
    if "given_name" in present:
        comparisons.append(_name_comparison(present))
    if "middle_name" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="middle_name",
                comparison_levels=[
                    cll.NullLevel("middle_name"),
                    cll.ExactMatchLevel("middle_name").configure(
                        tf_adjustment_column="middle_name"
                    ),
                    cll.JaroWinklerLevel("middle_name", 0.88),
                    cll.CustomLevel(
                        "substr(middle_name_l, 1, 1) = substr(middle_name_r, 1, 1)",
                        label_for_charts="Same middle initial",
                        base_dialect_str="duckdb",
                    ),
                    cll.ElseLevel(),
                ],
            )
        )
    if "family_name" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="family_name",
                comparison_levels=[
                    cll.NullLevel("family_name"),
                    cll.ExactMatchLevel("family_name").configure(
                        tf_adjustment_column="family_name"
                    ),
                    cll.JaroWinklerLevel("family_name", 0.92),
                    cll.DamerauLevenshteinLevel("family_name", 1).configure(
                        label_for_charts="One letter different or transposed"
                    ),
                    cll.JaroWinklerLevel("family_name", 0.88),
                    cll.JaroWinklerLevel("family_name", 0.7),
                    cll.ElseLevel(),
                ],
            )
        )
    if "date_of_birth" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="date_of_birth",
                comparison_levels=[
                    cll.NullLevel("date_of_birth"),
                    cll.ExactMatchLevel("date_of_birth"),
                    cll.CustomLevel(
                        _DOB_SWAP,
                        label_for_charts="Day and month swapped",
                        base_dialect_str="duckdb",
                    ),
                    cll.DamerauLevenshteinLevel("date_of_birth", 1).configure(
                        label_for_charts="One character different"
                    ),
                    cll.AbsoluteDateDifferenceLevel(
                        "date_of_birth",
                        threshold=1,
                        metric="year",
                        input_is_string=True,
                        # No format: each engine parses ISO dates with its own default
                        # (DuckDB strptime "%Y-%m-%d", Spark "yyyy-MM-dd").
                    ).configure(label_for_charts="Within a year"),
                    cll.ElseLevel(),
                ],
            )
        )
    if "sex" in present:
        comparisons.append(cl.ExactMatch("sex"))
    location = _location_comparison(present)
    if location is not None:
        comparisons.append(location)
    if "nhs_number" in present:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="nhs_number",
                comparison_levels=[
                    cll.NullLevel("nhs_number"),
                    cll.ExactMatchLevel("nhs_number"),
                    cll.DamerauLevenshteinLevel("nhs_number", 1).configure(
                        label_for_charts="One digit different or transposed"
                    ),
                    cll.ElseLevel(),
                ],
            )
        )
    for column in identifiers:
        comparisons.append(cl.ExactMatch(column))
    return comparisons


def _candidate_rules(present: set[str], identifiers: list[str]) -> list[CandidateRule]:
    # Each rule catches the matches the others miss: exact identifiers; a date of birth with
    # an initial (catching typos and nicknames in the rest); full names (for date errors);
    # postcode with an initial (when the date is missing, or the surname changed).
    wanted: list[tuple[str, ...]] = [("nhs_number",), *[(c,) for c in identifiers]]
    if "date_of_birth" in present:
        wanted += [("date_of_birth", FAMILY_INITIAL), ("date_of_birth", GIVEN_INITIAL)]
    wanted += [
        ("given_name", "family_name"),
        ("postcode", FAMILY_INITIAL),
        ("postcode", GIVEN_INITIAL),
        ("address", GIVEN_INITIAL),
    ]
    derived = {
        FAMILY_INITIAL: "family_name",
        GIVEN_INITIAL: "given_name",
        BIRTH_YEAR: "date_of_birth",
    }
    rules = []
    for columns in wanted:
        if all(derived.get(c, c) in present for c in columns):
            rules.append(CandidateRule(columns))
    return rules


def tighteners(rule: CandidateRule, present: set[str]) -> list[str]:
    """Columns that can be added to an over-large rule to shrink it, in order of preference."""
    options = [BIRTH_YEAR, "sex", GIVEN_INITIAL, FAMILY_INITIAL, "postcode"]
    source_of = {BIRTH_YEAR: "date_of_birth", GIVEN_INITIAL: "given_name"}
    source_of[FAMILY_INITIAL] = "family_name"
    out = []
    for option in options:
        if source_of.get(option, option) not in present:
            continue
        if option in rule.columns or source_of.get(option) in rule.columns:
            continue
        if option == BIRTH_YEAR and "date_of_birth" in rule.columns:
            continue
        out.append(option)
    return out


def _training_rules(present: set[str], comparisons: list[str]) -> list[Any]:
    # EM cannot estimate a comparison whose column it blocked on, so rules are taken until
    # every comparison has been estimated at least once. An exact identifier comes first:
    # pairs sharing an NHS number are nearly all true matches, so the m values of names and
    # dates are not inflated by twins and relatives, who share everything else.
    identifiers = sorted(c for c in present if c.startswith(IDENTIFIER_PREFIX))
    options: list[tuple[str, ...]] = [
        ("nhs_number",),
        *[(c,) for c in identifiers],
        ("given_name", "family_name", "date_of_birth"),
        ("date_of_birth",),
        ("given_name", "family_name"),
        ("postcode",),
        ("family_name",),
    ]
    chosen: list[tuple[str, ...]] = []
    untrained = set(comparisons)
    for columns in options:
        if not all(c in present for c in columns):
            continue
        trains = untrained - set(columns)
        if trains:
            chosen.append(columns)
            untrained -= trains
        if not untrained:
            break
    return [block_on(*columns) for columns in chosen]


def _deterministic_rules(present: set[str]) -> list[Any]:
    rules: list[Any] = []
    if {"given_name", "family_name", "date_of_birth"} <= present:
        rules.append(block_on("given_name", "family_name", "date_of_birth"))
    if "nhs_number" in present:
        rules.append(block_on("nhs_number"))
    if not rules and {"given_name", "family_name", "postcode"} <= present:
        rules.append(block_on("given_name", "family_name", "postcode"))
    return rules


def comparison_name(comparison: Any) -> str:
    """The output column name of a comparison creator or dict."""
    if isinstance(comparison, dict):
        return str(comparison["output_column_name"])
    return str(comparison.create_output_column_name())


def build_model(fields: list[str], overrides: Overrides | None = None) -> ModelSpec:
    """The automatic model for records holding ``fields``, with ``overrides`` applied."""
    overrides = overrides or Overrides()
    present = set(fields)
    identifiers = [f for f in fields if f.startswith(IDENTIFIER_PREFIX)]
    comparisons = _comparisons(present, identifiers)
    by_name = {comparison_name(c): c for c in comparisons}
    for name, replacement in overrides.comparisons.items():
        if replacement is None:
            if name not in by_name:
                raise ModelError(f"settings drop comparison {name!r}, which the model lacks")
            del by_name[name]
        else:
            replaced = dict(replacement)
            replaced.setdefault("output_column_name", name)
            by_name[name] = replaced
    comparisons = list(by_name.values())
    if not comparisons:
        raise ModelError(
            "no identity field is held by enough records to compare; check sources.yaml"
        )
    names = [comparison_name(c) for c in comparisons]
    training = (
        list(overrides.training_blocking_rules)
        if overrides.training_blocking_rules is not None
        else _training_rules(present, names)
    )
    if not training:
        raise ModelError("no training blocking rule fits these fields; set one in the settings")
    deterministic = (
        list(overrides.deterministic_rules)
        if overrides.deterministic_rules is not None
        else _deterministic_rules(present)
    )
    spec = ModelSpec(
        fields=list(fields),
        comparisons=comparisons,
        candidate_rules=_candidate_rules(present, identifiers),
        fixed_blocking_rules=overrides.blocking_rules,
        training_rules=training,
        deterministic_rules=deterministic,
        splink_extra=dict(overrides.splink),
    )
    if overrides.threshold is not None:
        spec.threshold = overrides.threshold
    if overrides.review_band is not None:
        spec.review_low, high = overrides.review_band
        if overrides.threshold is None:
            spec.threshold = high
    if spec.review_low > spec.threshold:
        raise ModelError(
            f"review band starts at {spec.review_low}, above the threshold {spec.threshold}"
        )
    if overrides.max_comparisons_per_record is not None:
        spec.max_comparisons_per_record = overrides.max_comparisons_per_record
    if overrides.u_max_pairs is not None:
        spec.u_max_pairs = overrides.u_max_pairs
    if overrides.em_max_pairs is not None:
        spec.em_max_pairs = overrides.em_max_pairs
    if overrides.deterministic_recall is not None:
        spec.deterministic_recall = overrides.deterministic_recall
    if not spec.candidate_rules and spec.fixed_blocking_rules is None:
        raise ModelError("no blocking rule fits these fields; set blocking_rules in the settings")
    return spec


def describe_rule(rule: Any) -> str:
    """The SQL of a blocking rule given as a creator, a dict or a string."""
    if isinstance(rule, str):
        return rule
    if isinstance(rule, dict):
        return str(rule.get("blocking_rule", rule))
    return str(rule.get_blocking_rule("duckdb").blocking_rule_sql)


def model_hash(model_json: dict[str, Any]) -> str:
    """SHA-256 of a trained model's JSON, canonicalised by sorted keys."""
    text = json.dumps(model_json, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
