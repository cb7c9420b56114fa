"""The pure helpers of courses/guides.py: answers compared, values filled in (and escaped),
variables drawn within their bounds. No database."""

from __future__ import annotations

import pytest

from courses import guides
from courses.models import GuideCheck, GuideVariable


def question(answer: str, mode=GuideCheck.AnswerMode.EXACT, case_sensitive=False) -> dict:
    return {"answer": answer, "answer_mode": mode, "case_sensitive": case_sensitive}


@pytest.mark.parametrize(
    ("answer", "given", "passes"),
    [
        ("192.168.10.1", " 192.168.10.1 ", True),
        ("Maintenance Mode", "maintenance   mode", True),
        ("192.168.10.1", "192.168.10.2", False),
        ("192.168.10.1", "", False),
    ],
)
def test_an_exact_answer_ignores_case_and_spacing_only(answer, given, passes):
    assert guides.answer_matches(question(answer), given, {}) is passes


def test_a_case_sensitive_answer_minds_case():
    assert not guides.answer_matches(question("Admin", case_sensitive=True), "admin", {})
    assert guides.answer_matches(question("Admin", case_sensitive=True), "Admin", {})


def test_a_set_answer_takes_its_items_in_any_order_but_all_of_them():
    check = question("esxi-01, esxi-02, esxi-03", GuideCheck.AnswerMode.SET)
    assert guides.answer_matches(check, "ESXI-03;esxi-01\nesxi-02", {})
    assert not guides.answer_matches(check, "esxi-01, esxi-02", {})
    assert not guides.answer_matches(check, "esxi-01, esxi-02, esxi-03, esxi-04", {})


def test_a_pattern_answer_must_match_whole():
    check = question(r"vlan ?\d+", GuideCheck.AnswerMode.PATTERN)
    assert guides.answer_matches(check, "VLAN 42", {})
    assert not guides.answer_matches(check, "my vlan 42", {})


def test_an_answer_may_use_the_labs_values():
    check = question("{{ lab_code }}")
    assert guides.answer_matches(check, "k3x9qa", {"lab_code": "k3x9qa"})
    assert not guides.answer_matches(check, "k3x9qa", {"lab_code": "zzzzzz"})


def test_fill_leaves_unknown_names_as_written():
    assert guides.fill("{{ a }} and {{b}} and {{ c }}", {"a": "1", "b": "2"}) == "1 and 2 and {{ c }}"


def test_fill_html_escapes_the_values_it_puts_into_a_page():
    html = guides.fill_html("<p>Your code: {{ code }}</p>", {"code": "<script>alert(1)</script>"})
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_variables_are_drawn_within_their_bounds():
    guide = {
        "variables": [
            {
                "name": "code",
                "kind": GuideVariable.Kind.STRING,
                "length": 12,
                "minimum": 1,
                "maximum": 1,
                "choices": [],
            },
            {
                "name": "vlan",
                "kind": GuideVariable.Kind.NUMBER,
                "length": 8,
                "minimum": 10,
                "maximum": 12,
                "choices": [],
            },
            {
                "name": "site",
                "kind": GuideVariable.Kind.CHOICE,
                "length": 8,
                "minimum": 1,
                "maximum": 1,
                "choices": ["north", "south"],
            },
        ]
    }
    draws = [guides.variables_draw(guide) for _ in range(200)]
    assert all(len(values["code"]) == 12 and set(values["code"]) <= set(guides.STRING_ALPHABET) for values in draws)
    assert {values["vlan"] for values in draws} == {"10", "11", "12"}
    assert {values["site"] for values in draws} == {"north", "south"}
    assert len({values["code"] for values in draws}) == 200  # students do not share codes


def test_guestinfo_names_the_keys_the_guest_reads():
    assert guides.guestinfo({"lab_code": "abc"}) == {"guestinfo.nestlab.lab_code": "abc"}


def test_a_students_guide_never_carries_an_answer_a_command_or_an_expected_value():
    guide = {
        "steps": [
            {
                "key": "1",
                "title": "Step",
                "body_html": "<p>Code {{ code }}</p>",
                "points": 5,
                "checks": [
                    {
                        "key": "7",
                        "kind": GuideCheck.Kind.COMMAND,
                        "label": "L",
                        "command": "grep SECRETCMD /x",
                        "output_pattern": "SECRETPAT",
                        "prompt": "",
                        "answer": "",
                        "expected": "",
                    },
                    {
                        "key": "8",
                        "kind": GuideCheck.Kind.QUESTION,
                        "label": "Q",
                        "command": "",
                        "output_pattern": "",
                        "prompt": "Which {{ code }}?",
                        "answer": "SECRETANSWER",
                        "expected": "",
                    },
                    {
                        "key": "9",
                        "kind": GuideCheck.Kind.VM_STATE,
                        "label": "S",
                        "command": "",
                        "output_pattern": "",
                        "prompt": "",
                        "answer": "",
                        "expected": "SECRETSTATE",
                    },
                ],
            }
        ]
    }
    shown = repr(guides.student_guide(guide, {"code": "abc"}))
    for secret in ("SECRETCMD", "SECRETPAT", "SECRETANSWER", "SECRETSTATE"):
        assert secret not in shown
    assert "Which abc?" in shown and "Code abc" in shown


def test_fill_html_never_makes_a_javascript_link_from_a_value_in_an_attribute():
    html = guides.fill_html('<p><a href="{{ site }}">the site</a></p>', {"site": "javascript:alert(1)"})
    assert "javascript:" not in html
    assert "the site" in html


def test_a_pattern_too_slow_on_a_crafted_answer_is_stopped_not_run_for_minutes():
    check = question(r"(a|aa)+", GuideCheck.AnswerMode.PATTERN)
    with pytest.raises(guides.PatternTooSlow):
        guides.answer_matches(check, "a" * 499 + "!", {})  # an answer within its 500 characters
    with pytest.raises(guides.PatternTooSlow):
        guides.pattern_found(r"(\w+\s?)*$", "word " * 2000 + "!")
    assert guides.pattern_found(r"^ntp 10\.0\.0\.1$", "server\nntp 10.0.0.1\n")  # output: any line
