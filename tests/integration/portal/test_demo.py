"""portal/demo.py: the demo class `make run` seeds, against a simulator of its own."""

import pytest

from core.roles import Role, primary_role
from courses.models import Course, TemplateVersion
from labs import services
from portal import demo

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _seed(demo_vcsim):
    return demo.seed_demo(
        vcenter_url=demo_vcsim.url, vcenter_user=demo_vcsim.username, vcenter_password=demo_vcsim.password
    )


def test_demo_has_an_open_course_on_a_published_template_with_students_and_a_quota(demo_vcsim, django_user_model):
    course = _seed(demo_vcsim)
    assert course.state == Course.State.OPEN
    version = course.template_version
    assert version.state == TemplateVersion.State.PUBLISHED
    assert sorted(vm["role"] for vm in version.spec["vms"]) == ["esxi-01", "esxi-02", "esxi-03", "router", "vcsa"]
    assert version.vcpu_total == 3 * 4 + 2 + 1
    assert sorted(course.enrollments.values_list("student__username", flat=True)) == [
        "student1",
        "student2",
        "student3",
    ]
    assert course.quota.running_labs == demo.DEMO_QUOTA["running_labs"]
    for account in demo.DEMO_ACCOUNTS:
        user = django_user_model.objects.get(username=account.username)
        assert user.check_password(account.password)
        assert primary_role(user) == Role(account.role)


def test_seeding_again_changes_nothing(demo_vcsim):
    first = _seed(demo_vcsim)
    second = _seed(demo_vcsim)
    assert second.pk == first.pk
    assert second.template_version_id == first.template_version_id
    assert TemplateVersion.objects.count() == 1


def test_after_a_simulator_restart_the_template_is_published_again(demo_vcsim):
    first = _seed(demo_vcsim)
    demo_vcsim.restart()  # the baseline snapshots are gone with the old process
    second = _seed(demo_vcsim)
    assert second.template_version.number == first.template_version.number + 1
    assert second.template_version.state == TemplateVersion.State.PUBLISHED


def test_the_demo_is_not_seeded_with_debug_off(settings):
    from django.core.management import CommandError, call_command

    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("seed_demo")
