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
