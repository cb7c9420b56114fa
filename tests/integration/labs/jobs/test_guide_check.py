"""'Check my work' (labs/jobs/guide_check.py) on the demo lab, run in-process against the session's
demo simulator (demo_vcsim), whose guests run the checks' commands (vcsim/guest.go): every check kind passing and
failing in words, the guest's failures, variables in guestinfo, progress surviving a revert."""

from __future__ import annotations

import pytest

from courses.models import GuideCheck
from labs import guides, selectors, services
from labs.endpoints import endpoint_client
from labs.jobs import execute
from labs.models import CheckResult, Lab, Operation, StepResult
from labs.vsphere import GuestCredentials
from portal import demo, simulator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


@pytest.fixture
def course(demo_vcsim, monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)
    demo_vcsim.reset_guests()
    return demo.seed_demo(
        vcenter_url=demo_vcsim.url, vcenter_user=demo_vcsim.username, vcenter_password=demo_vcsim.password
    )


def run(operation: Operation) -> Operation:
    execute(operation.pk)
    operation.refresh_from_db()
    return operation


def lab_of(course, username="student1") -> Lab:
    student = course.enrollments.get(student__username=username).student
    operation = run(services.lab_start(course=course, student=student, actor=student))
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    return Lab.objects.get(pk=operation.lab_id)


def step_titled(lab: Lab, title: str) -> dict:
    return next(step for step in lab.template_version.guide["steps"] if step["title"] == title)


def check(lab: Lab, title: str, answers=None, actor=None) -> Operation:
    operation = guides.lab_check_start(
        lab=lab, actor=actor or lab.student, step_key=step_titled(lab, title)["key"], answers=answers
    )
    return run(operation)


def results(lab: Lab, title: str) -> list[CheckResult]:
    return list(CheckResult.objects.filter(lab=lab, step_key=step_titled(lab, title)["key"]))


def guest_shell(demo_vcsim, lab: Lab, role: str, line: str) -> None:
    """What a student types on the VM's console: the simulated guest runs it (vcsim/shell.go)."""
    vm = lab.vms.get(role=role)
    result = endpoint_client(lab.endpoint).run_guest_script(
        vm.moref, GuestCredentials(simulator.GUEST_USERNAME, simulator.GUEST_PASSWORD), line, timeout=10
    )
    assert result.exit_code == 0, result.output


def test_a_command_check_fails_in_words_then_passes_once_the_student_did_the_step(course, demo_vcsim):
    lab = lab_of(course)
    first = check(lab, "Sign your router")
    assert first.state == Operation.State.SUCCEEDED, first.error
    [result] = results(lab, "Sign your router")
    assert not result.passed
    assert "Not yet: the check ended with exit code" in result.words
    assert "not done yet" in first.step

    guest_shell(demo_vcsim, lab, "router", f"echo {lab.variables['lab_code']} > /lab-code")
    second = check(lab, "Sign your router")
    [result] = results(lab, "Sign your router")
    assert result.passed, result.words
    assert lab.variables["lab_code"] in result.output
    assert "Step done" in second.step and "+10 points" in second.step
    assert selectors.lab_score(lab) == (10, 25)


def test_variables_differ_per_lab_and_are_in_the_vms_guestinfo(course, demo_vcsim):
    first, second = lab_of(course, "student1"), lab_of(course, "student2")
    assert set(first.variables) == {"lab_code"}
    assert first.variables["lab_code"] != second.variables["lab_code"]
    client = endpoint_client(first.endpoint)
    for vm in first.vms.all():
        assert client.vm_info(vm.moref).guest_info["guestinfo.nestlab.lab_code"] == first.variables["lab_code"]
    # ... and inside the guest, as a check's command reads it (vcsim/guestinfo.go).
    router = first.vms.get(role="router")
    credentials = GuestCredentials(simulator.GUEST_USERNAME, simulator.GUEST_PASSWORD)
    read = client.run_guest_script(router.moref, credentials, 'vmtoolsd --cmd "info-get guestinfo.nestlab.lab_code"')
    assert (read.exit_code, read.output) == (0, first.variables["lab_code"] + "\n")
    # Another student's code does not pass the first student's check.
    guest_shell(demo_vcsim, first, "router", f"echo {second.variables['lab_code']} > /lab-code")
    check(first, "Sign your router")
    assert not results(first, "Sign your router")[0].passed


def test_a_vm_state_check_reads_the_snapshot_from_vcenter(course):
    lab = lab_of(course)
    check(lab, "Save your work")
    [result] = results(lab, "Save your work")
    assert not result.passed and "no snapshot called cluster built" in result.words
    assert run(services.lab_snapshot_create(lab=lab, actor=lab.student, name="cluster built")).state == "succeeded"
    check(lab, "Save your work")
    assert results(lab, "Save your work")[0].passed


def test_a_question_passes_on_the_right_answer_only_and_keeps_the_answer(course):
    lab = lab_of(course)
    key = step_titled(lab, "Know your network")["checks"][0]["key"]
    check(lab, "Know your network", {key: "10.0.0.1"})
    [result] = results(lab, "Know your network")
    assert not result.passed and result.answer == "10.0.0.1"
    check(lab, "Know your network", {key: " 192.168.10.1 "})
    assert results(lab, "Know your network")[0].passed


def test_the_guests_failures_fail_the_check_in_words_not_the_operation(course, demo_vcsim):
    lab = lab_of(course)
    router = lab.vms.get(role="router")
    demo_vcsim.set_guest(router.moref, password="something-else")
    operation = check(lab, "Sign your router")
    assert operation.state == Operation.State.SUCCEEDED
    assert "refused the check's guest account" in results(lab, "Sign your router")[0].words

    demo_vcsim.set_guest(router.moref, password=simulator.GUEST_PASSWORD, tools_running=False)
    check(lab, "Sign your router")
    assert "VMware Tools are not running in router" in results(lab, "Sign your router")[0].words

    demo_vcsim.set_guest(router.moref, tools_running=True)
    run(services.lab_power(lab=lab, actor=lab.student, action="off", vm=router))
    check(lab, "Sign your router")
    assert "router is powered off" in results(lab, "Sign your router")[0].words


def test_a_check_past_its_time_limit_is_stopped_and_says_so(course, demo_vcsim):
    lab = lab_of(course)
    step = step_titled(lab, "Sign your router")
    version = lab.template_version
    version.guide["steps"][[s["key"] for s in version.guide["steps"]].index(step["key"])]["checks"][0].update(
        command="sleep 30", timeout_seconds=1
    )
    version.save(update_fields=["guide"])
    lab.refresh_from_db()
    check(lab, "Sign your router")
    assert "did not finish within 1 s" in results(lab, "Sign your router")[0].words


def test_a_revert_keeps_the_students_progress(course, demo_vcsim):
    lab = lab_of(course)
    guest_shell(demo_vcsim, lab, "router", f"echo {lab.variables['lab_code']} > /lab-code")
    check(lab, "Sign your router")
    baseline = lab.snapshots.get(is_baseline=True)
    assert run(services.lab_revert(lab=lab, actor=lab.student, snapshot=baseline)).state == "succeeded"
    assert StepResult.objects.get(lab=lab, step_key=step_titled(lab, "Sign your router")["key"]).is_completed
    assert selectors.lab_score(lab)[0] == 10


def test_an_instructors_check_keeps_the_students_answers(course):
    lab = lab_of(course)
    key = step_titled(lab, "Know your network")["checks"][0]["key"]
    check(lab, "Know your network", {key: "192.168.10.1"})
    instructor = course.instructors.first()
    operation = check(lab, "Know your network", {key: "wrong"}, actor=instructor)
    assert operation.state == Operation.State.SUCCEEDED
    result = results(lab, "Know your network")[0]
    assert result.passed and result.answer == "192.168.10.1"
    assert step_titled(lab, "Know your network")["checks"][0]["kind"] == GuideCheck.Kind.QUESTION


def test_a_question_pattern_too_slow_on_a_crafted_answer_fails_the_check_in_words(course):
    lab = lab_of(course)
    version = lab.template_version
    step = step_titled(lab, "Know your network")
    index = [s["key"] for s in version.guide["steps"]].index(step["key"])
    version.guide["steps"][index]["checks"][0].update(answer_mode="pattern", answer="(a|aa)+")
    version.save(update_fields=["guide"])
    lab.refresh_from_db()
    key = step["checks"][0]["key"]
    operation = check(lab, "Know your network", {key: "a" * 499 + "!"})
    assert operation.state == Operation.State.SUCCEEDED, operation.error
    [result] = results(lab, "Know your network")
    assert not result.passed and "could not be compared in time" in result.words


def test_a_check_vcenter_refuses_says_so_without_vcenters_words(course, monkeypatch, caplog):
    """vCenter's own words (a privilege, an inventory id, its host) are for the log: the result is
    the student's to read."""
    from labs.vsphere import PermissionDenied as VCenterRefused
    from labs.vsphere.client import VSphereClient

    lab = lab_of(course)
    detail = "Could not run a program in vm-42: the vCenter account lacks the privilege VirtualMachine.GuestOperations."

    def refused(*args, **kwargs):
        raise VCenterRefused(detail)

    monkeypatch.setattr(VSphereClient, "run_guest_script", refused)
    operation = check(lab, "Sign your router")
    assert operation.state == Operation.State.SUCCEEDED
    words = results(lab, "Sign your router")[0].words
    assert words.startswith("The check could not run in router: the lab servers reported a problem.")
    assert "vm-42" not in words and "privilege" not in words
    assert detail in caplog.text
