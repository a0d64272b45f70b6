"""The governance every study goes through: its staff, its registered data use, gated queries,
and the road out (disclosure control, a checker's release, publication in the catalogue).

A study is never a back door. It registers its own ``use.yaml`` (shipped beside this module),
which is applied by the study's analyst, submitted by them and approved by a different
information-governance user, exactly as any analyst's use is. Every query then goes through
:func:`candour.gate.run` under that use, and everything that leaves is a released output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import Any

import pandas as pd

from candour import gate, register
from candour.catalogue import Dataset, publish_release
from candour.config import Settings
from candour.disclosure import (
    Count,
    Mean,
    Release,
    Rules,
    SdcResult,
    approve_release,
    protect,
    request_release,
    save_output,
)
from candour.errors import CandourError
from candour.gate import QueryResult
from candour.register import PurposePolicy, UseSpec, UseView, parse_use

USE_VALIDITY_DAYS = 365


class StudyError(CandourError):
    """A study cannot run: unknown study, no linked data, or a step of its governance failed."""


@dataclass(frozen=True)
class StudyUsers:
    """Who does what in a study run: the analyst applies, queries and asks for releases; the IG
    lead approves the use; the checker approves releases. Three different people, so that both
    two-person rules (use approval, output checking) hold."""

    analyst: str = "study-analyst"
    ig: str = "study-ig"
    checker: str = "study-checker"

    def roles(self) -> dict[str, str]:
        """User name -> the role each needs."""
        return {self.analyst: "analyst", self.ig: "ig", self.checker: "checker"}


def ensure_users(users: StudyUsers, *, settings: Settings) -> list[str]:
    """Create the study's staff users that do not exist yet; return the names created.

    An existing user with the wrong role (or deactivated) is refused rather than repurposed:
    a study must not quietly act through someone else's account.
    """
    existing = {u.name: u for u in register.list_users(settings=settings)}
    created: list[str] = []
    for name, role in users.roles().items():
        user = existing.get(name)
        if user is None:
            register.add_user(name, role, settings=settings)
            created.append(name)
        elif user.role != role or not user.active:
            raise StudyError(
                f"staff user {name} exists with role {user.role}"
                f"{'' if user.active else ' (deactivated)'}; the study needs an active {role}"
            )
    return created


def load_study_use(
    file_name: str, users: StudyUsers, today: date, *, analysts: Sequence[str] = ()
) -> UseSpec:
    """The study's shipped ``use.yaml``, for this run's analyst and a year from ``today``.

    The shipped file's people and dates are placeholders: a use names real staff and is valid
    for a fixed period, so both are filled in when the study applies (and validated again).
    """
    text = resources.files("candour.studies").joinpath("uses", file_name).read_text("utf-8")
    spec = parse_use(text, f"candour/studies/uses/{file_name}")
    data = spec.model_dump(mode="json")
    data.update(
        applicant=users.analyst,
        analysts=list(analysts or [users.analyst]),
        starts=today.isoformat(),
        ends=(today + timedelta(days=USE_VALIDITY_DAYS)).isoformat(),
    )
    try:
        return UseSpec.model_validate(data)
    except ValueError as exc:
        raise StudyError(f"{file_name}: {exc}") from exc


def active_use(
    spec: UseSpec, users: StudyUsers, *, purposes: PurposePolicy, settings: Settings
) -> tuple[UseView, bool]:
    """An active use for ``spec``: the study's existing one if still active, or a new one
    applied, submitted and approved now. Returns the use and whether it was created.

    Reusing the active use means a re-run is the same governed piece of work, not a new
    application each time; a use whose application differs (grants, purpose, ...) is new.
    """
    wanted = register.application_hash(spec.model_copy(update={"starts": None, "ends": None}))
    for view in reversed(register.list_uses(settings=settings, include_drafts=False)):
        if view.status != "active" or view.spec.applicant != spec.applicant:
            continue
        mine = view.spec.model_copy(update={"starts": None, "ends": None})
        if register.application_hash(mine) == wanted:
            return register.get_use(view.use_id, settings=settings), False
    draft = register.apply_use(spec, purposes=purposes, settings=settings)
    register.submit(draft.use_id, users.analyst, settings=settings)
    register.approve(draft.use_id, users.ig, purposes=purposes, settings=settings)
    return register.get_use(draft.use_id, settings=settings), True


@dataclass
class StudyRun:
    """One run of one study: its use, the queries it made and what it released and published.

    Everything here is about the governance trail (ids, ledger indices), never data.
    """

    study: str
    settings: Settings
    users: StudyUsers
    use: UseView
    engine: str
    queries: list[QueryResult] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)

    def query(self, sql: str) -> pd.DataFrame:
        """Run ``sql`` through the gate as the study's analyst under its use; the protected
        output (aggregate use) or the rows, which stay in this process (record-level use)."""
        result = gate.run(
            self.use.use_id,
            self.users.analyst,
            sql,
            settings=self.settings.model_copy(update={"engine": self.engine}),
        )
        if result.truncated:
            raise StudyError(
                f"a query of {self.study} hit the gate's row limit; the study cannot use a "
                "truncated answer"
            )
        self.queries.append(result)
        return result.table.copy()

    def release(
        self,
        protected: SdcResult,
        *,
        name: str,
        title: str,
        description: str,
        keywords: Sequence[str],
        temporal: tuple[date, date] | None,
        column_titles: dict[str, str] | None = None,
        column_descriptions: dict[str, str] | None = None,
    ) -> Dataset:
        """Save a protected table, have the analyst request its release and the checker
        approve it, then publish it in the catalogue (whose own check runs again)."""
        who = self.users.analyst
        output = save_output(
            self.settings, protected, use_id=self.use.use_id, created_by=who, name=name
        )
        pending = request_release(self.settings, output.output_id, user=who)
        released = approve_release(self.settings, pending.release_id, checker=self.users.checker)
        self.releases.append(released)
        dataset = publish_release(
            self.settings,
            released.release_id,
            title=title,
            description=description,
            keywords=list(keywords),
            temporal=temporal,
            spatial="Wealdshire",
            frequency="never",
            published_by=who,
            column_titles=column_titles,
            column_descriptions=column_descriptions,
        )
        self.datasets.append(dataset)
        return dataset

    def release_gated(self, result_index: int, **kwargs: Any) -> Dataset:
        """Release the protected output of one of this run's aggregate queries, by position."""
        result = self.queries[result_index]
        if not isinstance(result.disclosure, SdcResult):
            raise StudyError("only an aggregate query's protected output can be released")
        return self.release(result.disclosure, **kwargs)

    def ledger_entries(self) -> dict[str, list[int]]:
        """The transparency-log entries of this run: the use's decisions, every query, every
        release (each a public entry anyone can verify)."""
        return {
            "use": sorted(
                t.ledger_index for t in self.use.transitions if t.ledger_index is not None
            ),
            "queries": [q.receipt.ledger_index for q in self.queries],
            "releases": [r.ledger_index for r in self.releases if r.ledger_index is not None],
        }


def protect_profile(
    table: pd.DataFrame,
    *,
    keys: Sequence[str],
    counts: Sequence[str],
    means: Sequence[tuple[str, str, str, str, str]] = (),
    threshold: int,
    rounding: int,
) -> SdcResult:
    """Disclosure control for a table a study computed from record-level rows inside the
    environment (e.g. cluster profiles), with the same rules the gate applies to its answers.

    ``means`` are ``(column, contributors, total, top1, top2)``: the per-group evidence the
    dominance rule needs, which :func:`candour.disclosure.protect` checks and drops.
    """
    measures: list[Count | Mean] = [Count(c) for c in counts]
    measures += [
        Mean(column, contributors=c, total=t, top1=a, top2=b) for column, c, t, a, b in means
    ]
    return protect(
        table,
        keys=list(keys),
        measures=measures,
        rules=Rules(threshold=threshold, rounding=rounding),
    )
