"""LTI 1.3 launches in real Chromium, inside the LMS's iframe as Moodle and Canvas show a tool:
a learner lands on their lab, an instructor on the class table (the test platform in
tests/support/lti_platform.py plays the LMS)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lti import keys
from lti.models import CourseLink, Platform
from portal.simulator import free_port
from tests.factories import lab_row, open_course
from tests.support.lti_platform import ADA, GRACE, INSTRUCTOR, LEARNER
from tests.support.processes import WebProcess

pytestmark = pytest.mark.browser


@pytest.fixture
def lms(transactional_db, celery_queue, lti_platform):
    """The portal, the LMS registered with it, and a course the LMS course is linked to. The
    LMS is registered first: a web process reads the origins that may frame it at most every 30 s."""
    port = free_port()
    platform = Platform.objects.create(
        name="Moodle",
        issuer=lti_platform.issuer,
        client_id=lti_platform.client_id,
        deployment_ids=[lti_platform.deployment_id],
        auth_login_url=lti_platform.auth_login_url,
        auth_token_url=lti_platform.auth_token_url,
        key_set_url=lti_platform.key_set_url,
        trust_emails=True,  # a school whose LMS locks e-mails
    )
    lti_platform.set_tool_jwks(keys.public_key_set())
    lti_platform.target_link_uri = f"http://127.0.0.1:{port}/lti/launch/"
    course = open_course(students=0)
    CourseLink.objects.create(
        platform=platform, deployment_id=lti_platform.deployment_id, context_id="course-101", course=course
    )
    server = WebProcess(port=port, extra_env={"NESTLAB_CELERY_QUEUE": celery_queue}).start()
    yield server, course
    server.stop()


def _open_in_the_lms(page, server, lti_platform, **prepared):
    params = lti_platform.prepare_launch(**prepared)
    page.goto(lti_platform.course_page_url(f"{server.url}/lti/login/", params))
    return page.frame_locator("#tool")


def test_a_learner_opening_the_activity_lands_on_their_lab_inside_the_lms(page, lms, lti_platform, screenshot):
    server, course = lms
    # A first launch makes Ada's account; her lab is built (a database row here).
    tool = _open_in_the_lms(page, server, lti_platform, user=ADA, roles=[LEARNER])
    expect(tool.get_by_role("button", name="Start my lab")).to_be_visible()
    from lti.models import Identity

    lab = lab_row(course, Identity.objects.get(subject="lms-ada").user)
    tool = _open_in_the_lms(page, server, lti_platform, user=ADA, roles=[LEARNER])
    expect(tool.get_by_role("heading", name=lab.name)).to_be_visible()
    assert page.frames[1].url == f"{server.url}/labs/{lab.pk}/"
    screenshot(page, "lti-learner-lab-in-lms-iframe")


def test_an_instructor_opening_the_activity_lands_on_the_class_table_inside_the_lms(
    page, lms, lti_platform, screenshot
):
    server, course = lms
    tool = _open_in_the_lms(page, server, lti_platform, user=GRACE, roles=[INSTRUCTOR])
    expect(tool.get_by_role("heading", name="Class labs")).to_be_visible()
    assert page.frames[1].url == f"{server.url}/labs/courses/{course.pk}/"
    assert course.instructors.filter(email="grace@school.example").exists()
    screenshot(page, "lti-instructor-class-table-in-lms-iframe")


def test_an_instructor_adds_the_activity_by_deep_linking_and_the_lms_gets_the_link(page, lms, lti_platform, screenshot):
    server, course = lms
    from tests.support.lti_platform import DEEP_LINKING_REQUEST

    other = open_course(students=0)
    # Grace teaches both courses in Nestlab already (her first launch made her account).
    _open_in_the_lms(page, server, lti_platform, user=GRACE, roles=[INSTRUCTOR])
    expect(page.frame_locator("#tool").get_by_role("heading", name="Class labs")).to_be_visible()
    other.instructors.add(course.instructors.get(email="grace@school.example"))
    tool = _open_in_the_lms(
        page, server, lti_platform, user=GRACE, roles=[INSTRUCTOR], message_type=DEEP_LINKING_REQUEST
    )
    expect(tool.get_by_role("heading", name="Add a Nestlab course to your LMS")).to_be_visible()
    screenshot(page, "lti-deep-link-choose-course")
    tool.get_by_label(f"{other.title} ({other.code}, open)").check()
    tool.get_by_role("button", name="Add to the LMS").click()
    # autosubmit.js posts the signed answer back to the LMS, which checks it against /lti/jwks/.
    expect(tool.get_by_text(f"Link added: Nestlab: {other.title}")).to_be_visible()
    (item,) = lti_platform.deep_link_items()
    assert item["custom"] == {"nestlab_link": str(CourseLink.objects.get(course=other).key)}
