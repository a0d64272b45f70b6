"""use.yaml: the issue's example parses; every mistake is refused naming the line and key."""

from datetime import date

import pytest

from candour.register import KEYS, SpecError, application_hash, parse_use

EXAMPLE = """\
title: Falls prevention evaluation
summary: Did home safety visits reduce falls? (plain English)
public_benefit: Fewer older people hurt by falls
organisation: Kent County Council
team: Public Health Intelligence
senior_responsible_owner: Director of Public Health
purpose: service-evaluation            # a purpose id
legal_basis:
  article_6: "6(1)(e) public task"
  article_9: "9(2)(h) health or social care"   # when special category data is used
  dpa_schedule_1: "Part 1 paragraph 2"
  common_law: "de-identified data; no duty of confidence breached"
applicant: ana                         # a staff user
analysts: [ana]                        # who may query under it
grants:                                # source name -> columns, or "*" for all
  ae_attendances: "*"
  fire_home_safety_visits: [visit_date]
output: aggregate                      # or record-level
disclosure: {threshold: 10, rounding: 5}   # rounding 1 means no rounding
dp_epsilon: null                       # or a number: differential-privacy mode
starts: 2026-01-01
ends: 2027-12-31
"""


def test_the_issues_example_parses():
    spec = parse_use(EXAMPLE)
    assert spec.purpose == "service-evaluation"
    assert spec.grants == {"ae_attendances": "*", "fire_home_safety_visits": ("visit_date",)}
    assert spec.legal_basis.dpa_schedule_1 == "Part 1 paragraph 2"
    assert (spec.disclosure.threshold, spec.disclosure.rounding) == (10, 5)
    assert spec.dp_epsilon is None
    assert (spec.starts, spec.ends) == (date(2026, 1, 1), date(2027, 12, 31))
    assert set(KEYS) == {line.split(":")[0] for line in EXAMPLE.splitlines() if line[:1].isalpha()}


def test_disclosure_defaults_are_10_and_5_and_output_aggregate():
    text = "\n".join(
        line
        for line in EXAMPLE.splitlines()
        if not line.startswith(("disclosure", "output", "dp_epsilon"))
    )
    spec = parse_use(text)
    assert (spec.disclosure.threshold, spec.disclosure.rounding, spec.output) == (
        10,
        5,
        "aggregate",
    )


def _replace(old: str, new: str) -> str:
    assert old in EXAMPLE
    return EXAMPLE.replace(old, new)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            EXAMPLE + "colour: blue\n",
            r"use.yaml: line 23: colour: unknown key 'colour' \(allowed: title",
        ),
        (
            _replace("  common_law:", "  article_10: x\n  common_law:"),
            r"use.yaml: line 12: legal_basis.article_10: unknown key",
        ),
        (EXAMPLE + "title: again\n", r"use.yaml: line 23: key 'title' repeats line 1"),
        (
            _replace("team: Public Health Intelligence\n", ""),
            r"use.yaml: team: this required key is missing",
        ),
        (
            _replace("[visit_date]", "[Visit Date]"),
            r"use.yaml: line 17: grants.fire_home_safety_visits: 'Visit Date' is not a column name",
        ),
        (
            _replace("[visit_date]", "[]"),
            r"use.yaml: line 17: grants.fire_home_safety_visits: must be \"\*\"",
        ),
        (_replace('"*"', '"all"'), r"use.yaml: line 16: grants.ae_attendances: must be"),
        (_replace("ends: 2027-12-31", "ends: 2025-12-31"), r"ends \(2025-12-31\) is before starts"),
        (
            _replace('  dpa_schedule_1: "Part 1 paragraph 2"\n', ""),
            r"use.yaml: line 8: legal_basis: Art 9\(2\)\(h\) needs a DPA 2018 Schedule 1 condition",
        ),
        (
            _replace('"6(1)(e) public task"', '"public task"'),
            r"use.yaml: line 9: legal_basis.article_6",
        ),
        (
            _replace("dp_epsilon: null", "dp_epsilon: 1.0").replace(
                "output: aggregate", "output: record-level"
            ),
            r"dp_epsilon\) is for aggregate output only",
        ),
        (_replace("dp_epsilon: null", "dp_epsilon: -1"), r"use.yaml: line 20: dp_epsilon"),
        (_replace("threshold: 10", "threshold: true"), r"use.yaml: line 19: disclosure.threshold"),
        (_replace("analysts: [ana]", "analysts: [ana, ana]"), r"names an analyst twice"),
        (_replace("applicant: ana", "applicant: Ana Smith"), r"use.yaml: line 13: applicant"),
        (_replace("output: aggregate", "output: rows"), r"use.yaml: line 18: output"),
        ("title: [unclosed\n", r"use.yaml: line 2: not valid YAML"),
        ("- a list\n", r"must be a mapping of the keys title"),
    ],
)
def test_mistakes_are_refused_with_the_line(text: str, message: str):
    with pytest.raises(SpecError, match=message):
        parse_use(text)


def test_application_hash_ignores_key_order_but_not_content():
    reordered = _replace(
        '  ae_attendances: "*"\n  fire_home_safety_visits: [visit_date]\n',
        '  fire_home_safety_visits: [visit_date]\n  ae_attendances: "*"\n',
    )
    assert application_hash(parse_use(reordered)) == application_hash(parse_use(EXAMPLE))
    changed = _replace("threshold: 10", "threshold: 11")
    assert application_hash(parse_use(changed)) != application_hash(parse_use(EXAMPLE))
