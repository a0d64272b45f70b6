"""A small, hand-built home for gate tests: people, two linked sources, users and a use.

Building it directly (rather than synth + ingest + link) keeps each test to well under a second
on both store backends; test_gate_county.py runs the real pipeline once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from candour import choices, register
from candour.config import Settings
from candour.home import Home
from candour.initialise import initialise_home
from candour.linkage.person_index import index_hash
from candour.store import IngestBatch, transaction
from candour.store.linkage import LinkRun, PersonNumber
from candour.warehouse import DuckDBWarehouse

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
AREAS = ("north", "south", "east", "west")
DIAGNOSES = ("fall", "burn", "fracture")


def pid(n: int) -> str:
    """A valid person id for number ``n``."""
    chars = []
    for _ in range(12):
        n, r = divmod(n, 32)
        chars.append(B32[r])
    return "P-" + "".join(reversed(chars))


@dataclass(frozen=True)
class Home_:
    settings: Settings
    people: list[str]
    ae: list[dict]  # rows of ae_attendances with person_num
    visits: list[dict]


def _ae_rows(people: int) -> list[dict]:
    rows = []
    for n in range(people):
        for k in range(1 + n % 3):
            rows.append(
                {
                    "record_key": f"ae_attendances:A{n}-{k}",
                    "batch_id": 1,
                    "event_date": date(2025, 1 + (n + k) % 12, 1 + k),
                    "diagnosis": DIAGNOSES[(n * 7 + k) % 3],
                    "area": AREAS[n % 4],
                    "cost": (n % 5) * 10 + k,
                    "secret_note": f"ward {n % 9}",
                    "person_num": n,
                }
            )
    return rows


def _visit_rows(people: int) -> list[dict]:
    return [
        {
            "record_key": f"fire_home_safety_visits:V{n}",
            "batch_id": 2,
            "event_date": date(2025, 6, 1 + n % 28),
            "visit_date": date(2025, 6, 1 + n % 28),
            "risk_score": n % 4,
            "person_num": n,
        }
        for n in range(0, people, 2)
    ]


def build_home(
    settings: Settings,
    people: int = 60,
    *,
    output: str = "aggregate",
    threshold: int = 3,
    rounding: int = 1,
    dp_epsilon: float | None = None,
    grants: str | None = None,
) -> Home_:
    """An initialised home with a linked person index, two sources, users and one active use."""
    initialise_home(settings)
    ids = [pid(5000 + n) for n in range(people)]
    ae = _ae_rows(people)
    visits = _visit_rows(people)
    index = {r["record_key"]: ids[r["person_num"]] for r in ae + visits}
    with transaction(settings) as session:
        session.add_all(
            PersonNumber(person_num=n, person_id=p, created_run="R-1") for n, p in enumerate(ids)
        )
        for n, source in enumerate(("ae_attendances", "fire_home_safety_visits"), start=1):
            session.add(
                IngestBatch(
                    id=n,
                    source=source,
                    file_name=f"{source}.csv",
                    content_sha256=f"{n}" * 64,
                    status="done",
                )
            )
        session.add(
            LinkRun(
                run_id="R-1",
                engine="duckdb",
                threshold=0.9,
                review_low=0.5,
                model_hash="0" * 64,
                index_hash=index_hash(index),
                finished_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    with DuckDBWarehouse(Home(settings.home).warehouse) as warehouse:
        warehouse.ensure_table(
            "ae_attendances",
            {"diagnosis": "category", "area": "category", "cost": "int", "secret_note": "text"},
            event_date=True,
        )
        warehouse.append(
            "ae_attendances",
            pa.Table.from_pylist([{k: v for k, v in r.items() if k != "person_num"} for r in ae]),
        )
        warehouse.ensure_table(
            "fire_home_safety_visits", {"visit_date": "date", "risk_score": "int"}, event_date=True
        )
        warehouse.append(
            "fire_home_safety_visits",
            pa.Table.from_pylist(
                [{k: v for k, v in r.items() if k != "person_num"} for r in visits]
            ),
        )
        keys = sorted(index)
        warehouse.connection.register(
            "_idx",
            pa.table(
                {
                    "record_key": keys,
                    "person_id": [index[k] for k in keys],
                    "person_num": pa.array([ids.index(index[k]) for k in keys], pa.uint32()),
                }
            ),
        )
        warehouse.connection.execute("CREATE TABLE person_index AS SELECT * FROM _idx")
    for name, role in (("ana", "analyst"), ("bob", "analyst"), ("ian", "ig")):
        register.add_user(name, role, settings=settings)
    choices.clear_cache()
    return Home_(settings, ids, ae, visits)


def use_text(
    *,
    output: str = "aggregate",
    threshold: int = 3,
    rounding: int = 1,
    dp_epsilon: float | None = None,
    grants: str | None = None,
    purpose: str = "research",
    starts: str = "2026-01-01",
    ends: str = "2027-12-31",
) -> str:
    grants = grants or (
        '  ae_attendances: [diagnosis, area, cost]\n  fire_home_safety_visits: "*"\n'
    )
    return f"""\
title: Gate test use
summary: Testing the gate
public_benefit: Better tests
organisation: Test Council
team: Tests
senior_responsible_owner: Chief Tester
purpose: {purpose}
legal_basis:
  article_6: "6(1)(e) public task"
  article_9: "9(2)(j) research"
  dpa_schedule_1: "Part 1 paragraph 4"
  common_law: "de-identified data"
applicant: ana
analysts: [ana]
grants:
{grants}output: {output}
disclosure: {{threshold: {threshold}, rounding: {rounding}}}
dp_epsilon: {"null" if dp_epsilon is None else dp_epsilon}
starts: {starts}
ends: {ends}
"""


def approved_use(settings: Settings, **kwargs: object) -> str:
    """Apply, submit and approve a use; return its id."""
    spec = register.parse_use(use_text(**kwargs))  # type: ignore[arg-type]
    view = register.apply_use(spec, purposes=choices.load_purposes(settings), settings=settings)
    register.submit(view.use_id, "ana", settings=settings)
    register.approve(
        view.use_id, "ian", purposes=choices.load_purposes(settings), settings=settings
    )
    return view.use_id
