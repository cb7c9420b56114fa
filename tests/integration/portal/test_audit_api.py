"""portal/audit_api.py: GET /api/v1/audit/ and its CSV export, for admins, with the page's filters."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from tests.factories import AdminFactory, InstructorFactory, StudentFactory
from tests.integration.labs.api.conftest import client_for

pytestmark = pytest.mark.django_db

LIST = "/api/v1/audit/"
EXPORT = "/api/v1/audit/export/"


def _entry(**fields) -> AuditEntry:
    values = {"category": "operation", "action": "lab.reset", "result": "succeeded", "source": "worker", **fields}
    return AuditEntry.objects.create(**values)


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def entries():
    now = timezone.now()
    return [
        _entry(actor_username="alice", category="login", action="auth.login", when=now - timedelta(days=2)),
        _entry(
            actor_username="alice", category="refusal", result="refused", detail="=1+1", when=now - timedelta(days=1)
        ),
        _entry(actor_username="bob", target="lab vsp8-bob-1 (#3)", when=now),
    ]


def test_admins_list_every_entry_newest_first_paginated(entries):
    body = client_for(AdminFactory()).get(LIST, {"limit": 2}).json()
    assert body["count"] == 3
    assert [row["id"] for row in body["results"]] == [entries[2].pk, entries[1].pk]
    assert body["next"] is not None
    row = body["results"][0]
    assert {key: row[key] for key in ("actor", "actor_username", "category", "action", "target", "result")} == {
        "actor": None,
        "actor_username": "bob",
        "category": "operation",
        "action": "lab.reset",
        "target": "lab vsp8-bob-1 (#3)",
        "result": "succeeded",
    }


def test_the_filters_are_the_pages(entries):
    client = client_for(AdminFactory())
    # The day of the newest entry, not the clock's: a test crossing midnight would ask for an empty day.
    today = timezone.localdate(entries[2].when).isoformat()

    def ids(**query):
        return [row["id"] for row in client.get(LIST, query).json()["results"]]

    assert ids(person="alice") == [entries[1].pk, entries[0].pk]
    assert ids(category="refusal") == [entries[1].pk]
    assert ids(result="succeeded", person="alice") == [entries[0].pk]
    assert ids(q="vsp8-bob") == [entries[2].pk]
    assert ids(date_from=today, date_to=today) == [entries[2].pk]


def test_bad_filters_answer_400_in_words():
    response = client_for(AdminFactory()).get(LIST, {"date_from": "2026-11-02", "date_to": "2026-11-01"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"date_to": ["The end date is before the start date."]}
    assert client_for(AdminFactory()).get(EXPORT, {"category": "gossip"}).status_code == 400


@pytest.mark.parametrize("factory", [InstructorFactory, StudentFactory])
def test_only_admins_read_or_export_it(factory):
    client = client_for(factory())
    for url in (LIST, EXPORT):
        response = client.get(url)
        assert response.status_code == 403
        assert response.json()["detail"] == "Only admins read the audit log."


def test_the_export_is_the_filtered_set_as_csv_with_formulas_neutralised(entries):
    response = client_for(AdminFactory()).get(EXPORT, {"person": "alice"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="nestlab-audit-')
    header, *rows = _csv(response)
    assert header[:5] == ["id", "when", "actor_username", "category", "action"]
    assert [row[0] for row in rows] == [str(entries[1].pk), str(entries[0].pk)]
    assert rows[0][header.index("detail")] == "'=1+1"


def test_the_schema_documents_both_routes(client):
    client.force_login(StudentFactory())
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/audit/:" in schema and "/api/v1/audit/export/:" in schema
    assert "text/csv" in schema
    assert "name: date_from" in schema
