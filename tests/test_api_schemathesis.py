"""Schemathesis against the live app with every bundled plugin: generated requests for every operation, no 5xx,
and every answer conforms to the OpenAPI document (status, content type, schema)."""

from __future__ import annotations

from typing import Any

import pytest

#: Every tag of the app with every bundled plugin: each must have operations, and each is fuzzed.
TAGS = [
    "customers",
    "interactions",
    "users",
    "teams",
    "roles",
    "tokens",
    "audit",
    "webhooks",
    "meta",
    "sales",
    "loyalty",
    "campaigns",
    "analytics",
    "idic",
    "qci",
    "service",
    "notes",
]
EXAMPLES = 6  # per operation and backend: enough to reach every branch of input checking, and the suite stays fast


@pytest.mark.parametrize("tag", TAGS)
def test_every_operation_answers_within_its_documented_contract(crm_factory: Any, tag: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    from crmkit.testing import add_user
    from crmkit.web import create_app

    crm = crm_factory(plugins=None)
    for n in range(3):  # a few records for generated ids to find
        crm.customers.add(name=f"Khách Thử {n}", email=f"thu{n}@example.vn", phone=f"090{n}000111")
    add_user(crm, "fuzz", roles=["administrator"])
    token = crm.users.create_token("fuzz", "schemathesis").secret
    app = create_app(crm)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    mine = [op for op in operations if op.definition.raw.get("tags") == [tag]]
    assert mine, f"no operation is tagged {tag}"
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    for operation in mine:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=checks)

        check()
