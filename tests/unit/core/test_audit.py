"""core/audit.py without services: CSV neutralisation and rows, objects in words; the filter
form and serializer (portal/forms.py, portal/audit_api.py) that feed its selector."""

import csv
import io
from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import User

from core import audit
from courses.models import Course, VCenterEndpoint
from labs.models import Lab
from portal.audit_api import AuditFilterSerializer
from portal.forms import AuditFilterForm


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("lab vsp8-1 (#12)", "lab vsp8-1 (#12)"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (12, "12"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_apostrophe(value, expected):
    assert audit.csv_safe(value) == expected


def test_rows_are_real_csv_with_quotes_commas_and_newlines_kept():
    when = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    row = (
        7,
        when,
        "alice",
        "refusal",
        "labs:lab-reset",
        'lab "x", #1',
        "lab",
        "1",
        "refused",
        "a\nb",
        "page",
        None,
    )
    text = audit.csv_header() + audit.csv_rows([row])
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == list(audit.CSV_COLUMNS)
    assert parsed[1] == [
        "7",
        "2026-11-24T09:30:00+00:00",
        "alice",
        "refusal",
        "labs:lab-reset",
        'lab "x", #1',
        "lab",
        "1",
        "refused",
        "a\nb",
        "page",
        "",
    ]


def test_an_injected_detail_is_neutralised_in_the_row():
    row = (1, None, "=cmd|' /C calc'!A0", "refusal", "x", "", "", "", "refused", "-1", "page", None)
    parsed = next(csv.reader(io.StringIO(audit.csv_rows([row]))))
    assert parsed[2] == "'=cmd|' /C calc'!A0"
    assert parsed[9] == "'-1"


def test_objects_are_named_in_words_with_their_type_and_id():
    course = Course(pk=3, code="vsp8", title="vSphere 8")
    assert audit.describe(course) == audit.Target(text="course vsp8: vSphere 8 (#3)", type="course", id="3")
    lab = Lab(pk=12, course=course, student=User(username="student1"), number=1)
    assert audit.describe(lab) == audit.Target(text="lab vsp8-student1-1 (#12)", type="lab", id="12")
    assert audit.describe(VCenterEndpoint(pk=2, name="Campus")).text == "vCenter Campus (#2)"
    assert audit.describe(User(pk=5, username="alice")) == audit.Target(text="account alice (#5)", type="user", id="5")


def test_the_filter_form_turns_into_the_selectors_arguments():
    form = AuditFilterForm({"person": "alice", "category": "refusal", "q": "snapshot", "date_from": "2026-11-01"})
    assert form.is_valid(), form.errors
    assert form.filters() == {
        "person": "alice",
        "category": "refusal",
        "result": "",
        "text": "snapshot",
        "date_from": date(2026, 11, 1),
        "date_to": None,
    }


def test_the_filter_form_refuses_dates_in_the_wrong_order_and_unknown_choices():
    form = AuditFilterForm({"date_from": "2026-11-02", "date_to": "2026-11-01", "result": "maybe"})
    assert not form.is_valid()
    assert form.errors["date_to"] == ["The end date is before the start date."]
    assert "result" in form.errors


def test_the_api_filter_says_the_same():
    query = AuditFilterSerializer(data={"date_from": "2026-11-02", "date_to": "2026-11-01"})
    assert not query.is_valid()
    assert query.errors["date_to"] == ["The end date is before the start date."]
