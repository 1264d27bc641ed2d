"""The OpenAPI contract of /v1, checked by schemathesis against the running API.

Every operation of ``/v1/openapi.json`` gets generated requests (valid and invalid,
derandomized, a bounded number per operation) sent with a bearer token; each
response must not be a 5xx and must conform to the document (status code,
content type, body schema). Then one hand-made "happy" request per operation
reaches the success responses that random ids cannot (a real server, a real
conversation, a real action).

It runs on its own data: dedicated users (``*@contract.test``), a server row of its
own (``sf-contract-1``, deleted by the test), actions it proposed itself.
"""

from __future__ import annotations

import json
import uuid

import pyotp
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hsettings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.checks import not_a_server_error

from salt_ext.db import Database
from salt_ext.devstack import stack
from salt_ext.inventory import store as inventory_store
from salt_ext.inventory.model import Server
from salt_ext.security import identity
from tests.functional.api_stack import PASSWORD, start_api_stack

pytestmark = pytest.mark.functional

USERS = {"admin": "admin@contract.test", "operator": "operator@contract.test", "viewer": "mfa@contract.test"}
OWN_SERVER = "sf-contract-1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Operations that start real work (a chat turn, a Salt job) get fewer examples.
HEAVY = {"send_message", "execute_on_server", "events"}
EXAMPLES = {"light": 10, "heavy": 3}


@pytest.fixture(scope="module")
def api(salt_stack):
    client = start_api_stack(salt_stack)
    settings = stack.settings_for(salt_stack)
    db = Database.from_settings(settings)
    try:
        with db.tenant(settings["tenant_id"]) as conn:
            for role, email in USERS.items():
                if identity.get_user(conn, email) is None:
                    identity.add_user(conn, settings, email, role, name=f"contract {role}", password=PASSWORD)
            inventory_store.upsert_facts(conn, settings["tenant_id"], Server(
                minion_id=OWN_SERVER, hostname=OWN_SERVER, tags=["contract"], grains={"id": OWN_SERVER}))
    finally:
        db.close()
    return client


@pytest.fixture(scope="module")
def tokens(api):
    out = {}
    for who, email in USERS.items():
        res = api.request("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
        assert res.status == 200, res.body
        out[who] = res.json()
    return out


@pytest.fixture(scope="module")
def schema(api):
    doc = api.request("GET", "/v1/openapi.json").json()
    return schemathesis.openapi.from_dict(doc)


def _validate(case, base: str, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if case.operation.definition.raw.get("security") == [] and case.path.startswith("/auth/"):
        headers = {}
    response = case.call(base_url=base, headers=headers, timeout=120)
    case.validate_response(response, checks=CHECKS)


def _fuzz(operation, mode: GenerationMode, base: str, token: str, examples: int) -> None:
    overrides = {"query": {"max_seconds": 1}} if operation.definition.raw.get("operationId") == "events" else {}

    @hsettings(max_examples=examples, derandomize=True, database=None, deadline=None,
               phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, **overrides))
    def run(case) -> None:
        if overrides:
            case.query = {**(case.query or {}), "max_seconds": 1}
        _validate(case, base, token)

    run()


def test_every_operation_conforms_to_the_document(api, tokens, schema):
    base = api.base + "/v1"
    token = tokens["admin"]["access_token"]
    covered = set()
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        op_id = operation.definition.raw["operationId"]
        covered.add(op_id)
        examples = EXAMPLES["heavy" if op_id in HEAVY else "light"]
        raw = operation.definition.raw
        # nothing to make invalid in a request without parameters, body or credentials
        negative = bool(raw.get("parameters") or raw.get("requestBody") or raw.get("security") != [])
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)[:2 if negative else 1]:
            try:
                _fuzz(operation, mode, base, token, examples)
            except Exception as exc:  # collect every operation's failure, then report them together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    doc_ops = {op["operationId"] for ops in api.request("GET", "/v1/openapi.json").json()["paths"].values()
               for op in ops.values()}
    assert covered == doc_ops and len(covered) >= 18


def test_success_responses_conform(api, tokens, schema):
    """One real request per operation that random data cannot reach."""
    base = api.base + "/v1"
    admin, operator = tokens["admin"]["access_token"], tokens["operator"]["access_token"]

    def check(path: str, method: str, token: str | None, expect: int, **parts):
        case = schema[path][method].Case(**parts)
        response = case.call(base_url=base, headers={"Authorization": f"Bearer {token}"} if token else {},
                             timeout=150)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == expect, (path, method, response.status_code, response.text[:300])
        return response

    check("/auth/login", "POST", None, 200, body={"email": USERS["operator"], "password": PASSWORD})
    check("/auth/me", "GET", admin, 200)
    refresh = tokens["operator"]["refresh_token"]
    rotated = check("/auth/refresh", "POST", None, 200, body={"refresh_token": refresh}).json()
    check("/auth/logout", "POST", None, 204, body={"refresh_token": rotated["refresh_token"]})
    check("/servers", "GET", admin, 200, query={"tags": ["contract"], "limit": 100})
    check("/servers/{id}", "GET", admin, 200, path_parameters={"id": "sf-web-1"})
    check("/servers/{id}/execute", "POST", operator, 202, path_parameters={"id": "sf-web-1"},
          body={"module": "test.ping"})
    proposed = check("/servers/{id}/execute", "POST", operator, 202, path_parameters={"id": "sf-web-1"},
                     body={"module": "service.restart", "args": {"name": "nginx"}}).json()
    check("/chat/actions", "GET", admin, 200)
    check("/chat/actions/{id}/reject", "POST", admin, 200, path_parameters={"id": proposed["action_id"]},
          body={"reason": "contract test"})
    second = check("/servers/{id}/execute", "POST", operator, 202, path_parameters={"id": "sf-web-1"},
                   body={"module": "service.restart", "args": {"name": "nginx"}}).json()
    check("/chat/actions/{id}/execute", "POST", admin, 202, path_parameters={"id": second["action_id"]},
          body={"confirm": True})
    conv = check("/chat/conversations", "POST", operator, 201, body={"title": "contract"}).json()
    check("/chat/conversations", "GET", operator, 200)
    check("/chat/conversations/{id}/messages", "POST", operator, 200, path_parameters={"id": conv["id"]},
          body={"content": "is sf-web-1 up?"})
    check("/chat/conversations/{id}", "GET", operator, 200, path_parameters={"id": conv["id"]})
    check("/events", "GET", operator, 200, query={"conversation_id": conv["id"], "max_seconds": 1})
    check("/executions", "GET", admin, 200, query={"limit": 5})
    check("/audit", "GET", admin, 200, query={"since": "1h", "limit": 5})
    check("/servers/{id}", "DELETE", admin, 204, path_parameters={"id": OWN_SERVER})
    check("/servers/{id}", "GET", admin, 404, path_parameters={"id": OWN_SERVER})
    check("/alerts", "GET", admin, 200, query={"status": "all", "limit": 10})
    check("/openapi.json", "GET", None, 200)
    # two-factor enrolment, on a user of its own (sign-in asks for codes afterwards)
    mfa_user = tokens["viewer"]["access_token"]
    enrolled = check("/auth/mfa/enroll", "POST", mfa_user, 200).json()
    check("/auth/mfa/confirm", "POST", mfa_user, 200, body={"code": pyotp.TOTP(enrolled["secret"]).now()})
    assert check("/auth/login", "POST", None, 401, body={"email": USERS["viewer"], "password": PASSWORD}
                 ).json()["error"]["code"] == "AUTH004"
    assert json.loads(check("/auth/me", "GET", operator, 200).text)["email"] == USERS["operator"]
    assert uuid.UUID(conv["id"])
