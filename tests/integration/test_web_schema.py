"""Schemathesis against the OpenAPI document: generated requests never cause a server error,
and every response matches the documented status codes, content types and schemas.

The operations are driven with Hypothesis directly rather than through Schemathesis's pytest
plugin, which does not yet support this pytest's test items.
"""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings

from candour.web import create_app
from e2e.support import make_home


def test_api_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    app = create_app(make_home(tmp_path, entries=300))
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/api/v1/log/checkpoint", "/api/v1/log/entries", "/api/v1/log/entries/{index}",
            "/api/v1/log/entries/{index}/proof"} <= paths
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=60, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate()

        check()


def test_signed_in_api_conforms_on_a_real_town(tmp_path: Path) -> None:
    """The same, signed in as a resident and an IG lead at once, on linked synthetic data."""
    from e2e.support import (
        CSRF,
        add_staff,
        make_release,
        make_use,
        matched_residents,
        resident_session,
        session_cookie,
        staff_session,
        town,
    )

    home = town(tmp_path)
    add_staff(home)
    use_id = make_use(home, "active")
    make_release(home, use_id)
    resident = matched_residents(home, 1)[0]
    session = {**resident_session(resident.person_id), **staff_session("ian")}
    headers = {"Cookie": f"candour-session={session_cookie(home, session)}",
               "X-CSRF-Token": CSRF}
    app = create_app(home)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/api/v1/register/uses", "/api/v1/register/uses/{use_id}", "/api/v1/me",
            "/api/v1/me/records", "/api/v1/me/choices", "/api/v1/me/choices/{purpose_id}",
            "/api/v1/me/services", "/api/v1/me/services/{source}", "/api/v1/me/download",
            "/api/v1/staff/uses", "/api/v1/staff/releases", "/api/v1/staff/audit",
            "/api/v1/staff/linkage/pairs", "/api/v1/services/{source}/preferences",
            "/api/v1/services/{source}/preferences/{record_id}"} <= paths
    for operation in operations:
        if operation.path.startswith("/api/v1/log"):
            continue  # covered above

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        check()
