"""labs/api/views.py LabViewSet: student labs through the API, without vCenter (nothing is
enqueued) except the console, which asks the session's simulator for a real ticket."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from labs import services
from labs.endpoints import endpoint_client
from labs.models import ConsoleSession, Lab, LabSnapshot, LabVM, Operation
from tests.factories import AdminFactory, InstructorFactory, open_course, simulator_endpoint
from tests.integration.labs.api.conftest import client_for, idle, ready_lab, student_of

pytestmark = pytest.mark.django_db

DEMO_ESXI = "/DC0/vm/Nestlab Templates/Nested vSphere 8 Lab/esxi-01"


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    monkeypatch.setattr(services.dispatch, "send_operation", lambda *args, **kwargs: None)


def _snapshot(lab: Lab, name: str, parent: LabSnapshot | None = None, **fields) -> LabSnapshot:
    return LabSnapshot.objects.create(lab=lab, name=name, parent=parent, **fields)


# Listing and reading


def test_a_student_lists_their_own_labs_an_instructor_their_courses_and_an_admin_all():
    course, other = open_course(students=2), open_course(students=1)
    mine, classmates, elsewhere = ready_lab(course, 0), ready_lab(course, 1), ready_lab(other, 0)

    def ids(user, **query):
        response = client_for(user).get("/api/v1/labs/", query)
        assert response.status_code == 200, response.json()
        return {row["id"] for row in response.json()["results"]}

    assert ids(mine.student) == {mine.pk}
    assert ids(course.instructors.get()) == {mine.pk, classmates.pk}
    assert ids(AdminFactory()) == {mine.pk, classmates.pk, elsewhere.pk}
    assert ids(AdminFactory(), course=other.pk) == {elsewhere.pk}
    assert ids(course.instructors.get(), course=other.pk) == set()
    assert ids(InstructorFactory()) == set()


def test_deleted_labs_are_hidden_unless_asked_for_and_state_filters():
    course = open_course(students=2)
    kept, gone = ready_lab(course, 0), ready_lab(course, 1)
    Lab.objects.filter(pk=gone.pk).update(state=Lab.State.DELETED)
    client = client_for(course.instructors.get())

    def ids(**query):
        return [row["id"] for row in client.get("/api/v1/labs/", query).json()["results"]]

    assert ids() == [kept.pk]
    assert ids(state="deleted") == [gone.pk]
    assert ids(state="ready") == [kept.pk]
    assert client.get(f"/api/v1/labs/{gone.pk}/").json()["state"] == "deleted"
    bad = client.get("/api/v1/labs/", {"state": "asleep"})
    assert bad.status_code == 400 and "state" in bad.json()["errors"]


def test_a_listed_lab_names_the_operation_keeping_it_busy():
    course = open_course()
    lab = ready_lab(course)
    running = services.lab_snapshot_create(lab=lab, actor=lab.student, name="one")
    [row] = client_for(lab.student).get("/api/v1/labs/").json()["results"]
    assert row["operation"]["id"] == running.pk and row["operation"]["kind"] == "snapshot"
    assert (row["name"], row["course"], row["course_code"], row["student"]) == (
        lab.name,
        course.pk,
        course.code,
        lab.student.username,
    )
    assert row["running"] is True and row["state"] == "ready"


def test_the_lab_detail_has_vms_networks_the_snapshot_tree_and_the_running_operation():
    course = open_course()
    lab = ready_lab(course)
    instructor = course.instructors.get()
    baseline = _snapshot(lab, "Baseline", is_baseline=True)
    built = _snapshot(lab, "cluster built", parent=baseline, created_by=lab.student, description="3 hosts")
    broken = _snapshot(lab, "broken", parent=built, created_by=lab.student)
    other_branch = _snapshot(lab, "vds", parent=baseline, created_by=instructor)
    orphan = _snapshot(lab, "orphan")  # its parent was deleted
    Lab.objects.filter(pk=lab.pk).update(current_snapshot=broken, hours_used=1.5)
    clone = services.lab_clone(lab=lab, actor=lab.student)  # the source is busy while the clone is made

    response = client_for(lab.student).get(f"/api/v1/labs/{lab.pk}/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "ready" and body["error"] == "" and body["current_snapshot"] == broken.pk
    assert body["hours_used"] >= 1.5
    assert body["operation"]["id"] == clone.pk and body["operation"]["kind"] == "clone"
    # No vCenter id for the student (docs/security.md, round 4): its staff read it.
    assert body["template_version"] == lab.template_version_id and body["endpoint"] is None
    assert client_for(instructor).get(f"/api/v1/labs/{lab.pk}/").json()["endpoint"] == lab.endpoint_id

    assert [vm["role"] for vm in body["vms"]] == ["esxi-01", "router"]
    assert set(body["vms"][0]) == {
        "id", "role", "name", "boot_order", "power_state", "guest_ip", "overall_status", "num_cpu", "memory_mb"
    }  # fmt: skip
    assert (body["vms"][0]["num_cpu"], body["vms"][0]["memory_mb"]) == (4, 16384)
    [network] = body["networks"]
    assert network == {"name": "lab", "vlan_id": lab.networks.get().vlan_id, "port_group": f"nestlab-lab{lab.pk}-lab"}

    roots = body["snapshots"]
    assert [root["name"] for root in roots] == ["Baseline", "orphan"]
    assert roots[0]["is_baseline"] is True and roots[1]["parent"] is None
    assert [child["name"] for child in roots[0]["children"]] == ["cluster built", "vds"]
    first = roots[0]["children"][0]
    assert (first["id"], first["parent"], first["description"], first["created_by"]) == (
        built.pk,
        baseline.pk,
        "3 hosts",
        lab.student.username,
    )
    assert [child["id"] for child in first["children"]] == [broken.pk]
    assert roots[0]["children"][1]["id"] == other_branch.pk and orphan.pk == roots[1]["id"]


def test_an_idle_lab_has_no_operation_and_reads_in_the_same_few_queries_whatever_its_size(
    django_assert_max_num_queries,
):
    course = open_course()
    lab = ready_lab(course)
    ready_lab(course, 1), ready_lab(course, 2)
    parent = _snapshot(lab, "Baseline", is_baseline=True, created_by=lab.student)
    for index in range(5):
        parent = _snapshot(lab, f"step {index}", parent=parent, created_by=lab.student)
    client = client_for(lab.student)
    # Roles, the version (the lab's row, the busy check), the lab, VMs, networks, snapshots, the
    # busy check; with an ETag sent back and nothing changed, roles and the version only.
    with django_assert_max_num_queries(8):
        answer = client.get(f"/api/v1/labs/{lab.pk}/")
    body = answer.json()
    assert body["operation"] is None and len(body["snapshots"]) == 1
    with django_assert_max_num_queries(3):
        assert client.get(f"/api/v1/labs/{lab.pk}/", HTTP_IF_NONE_MATCH=answer["ETag"]).status_code == 304
    with django_assert_max_num_queries(6):  # roles, count, page, the busy check, teaches the course
        assert client_for(course.instructors.get()).get("/api/v1/labs/").json()["count"] == 3


# Starting


def test_a_student_starts_their_lab_and_gets_202_with_the_operation():
    course = open_course()
    student = student_of(course)
    response = client_for(student).post("/api/v1/labs/", {"course": course.pk}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["kind"], body["state"], body["actor"]) == ("provision", "queued", student.username)
    lab = Lab.objects.get(pk=body["lab"])
    assert (lab.student, lab.course, lab.state) == (student, course, Lab.State.PROVISIONING)
    assert client_for(student).get(f"/api/v1/operations/{body['id']}/").json()["lab"] == lab.pk


def test_an_instructor_starts_a_lab_for_a_student():
    course = open_course()
    student = student_of(course)
    response = client_for(course.instructors.get()).post(
        "/api/v1/labs/", {"course": course.pk, "student": student.username}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert Lab.objects.get(pk=response.json()["lab"]).student == student


def test_starting_a_lab_is_refused_in_words():
    course, other = open_course(students=2), open_course()
    student, classmate = student_of(course, 0), student_of(course, 1)
    client = client_for(student)

    for_someone = client.post("/api/v1/labs/", {"course": course.pk, "student": classmate.username}, format="json")
    assert for_someone.status_code == 403
    assert for_someone.json()["detail"] == "Only this course's instructors can start labs for students."
    not_mine = client.post("/api/v1/labs/", {"course": other.pk}, format="json")
    assert not_mine.status_code == 400
    assert not_mine.json()["errors"] == {"course": ["No course with that id."]}
    nobody = client_for(course.instructors.get()).post(
        "/api/v1/labs/", {"course": course.pk, "student": "nobody-here"}, format="json"
    )
    assert nobody.status_code == 400 and nobody.json()["errors"] == {"student": ["No account is called nobody-here."]}
    stranger = client_for(course.instructors.get()).post(
        "/api/v1/labs/", {"course": course.pk, "student": student_of(other).username}, format="json"
    )
    assert stranger.status_code == 400 and stranger.json()["detail"].endswith(f"is not enrolled in {course.code}.")
    assert client.post("/api/v1/labs/", {}, format="json").json()["errors"]["course"]
    assert not Lab.objects.exists()


def test_a_full_class_refuses_a_start_with_the_limit_in_words():
    course = open_course(students=3, quota={"running_labs": 2})
    ready_lab(course, 0), ready_lab(course, 1)
    response = client_for(student_of(course, 2)).post("/api/v1/labs/", {"course": course.pk}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == ("No more labs can run at once in this class: the limit is 2 and 2 are in use.")


# Actions on a lab


def test_every_action_answers_202_with_its_operation():
    course = open_course()
    lab = ready_lab(course)
    baseline = _snapshot(lab, "Baseline", is_baseline=True)
    taken = _snapshot(lab, "mine", parent=baseline)
    router = lab.vms.get(role="router")
    client = client_for(lab.student)
    base = f"/api/v1/labs/{lab.pk}"

    cases = [
        ("post", f"{base}/snapshots/", {"name": "cluster built", "description": "3 hosts"}, "snapshot"),
        ("delete", f"{base}/snapshots/{taken.pk}/", None, "delete_snapshot"),
        ("post", f"{base}/revert/", {"snapshot": baseline.pk}, "revert"),
        ("post", f"{base}/reset/", None, "reset"),
        ("post", f"{base}/power/", {"action": "off"}, "power"),
        ("post", f"{base}/power/", {"action": "reset", "vm": router.pk}, "power"),
        ("post", f"{base}/clone/", None, "clone"),
        ("delete", f"{base}/", None, "delete"),
    ]
    for method, url, body, kind in cases:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 202, (url, response.json())
        answer = response.json()
        assert (answer["kind"], answer["state"], answer["actor"]) == (kind, "queued", lab.student.username)
        operation = Operation.objects.get(pk=answer["id"])
        if kind == "clone":
            assert operation.lab.source_lab == lab and answer["lab"] == operation.lab_id != lab.pk
        else:
            assert answer["lab"] == lab.pk
        idle(lab)

    params = [op.params for op in Operation.objects.filter(lab=lab).order_by("id")]
    assert params[1] == {"name": "cluster built", "description": "3 hosts"}
    assert params[2] == {"snapshot": taken.pk}
    assert params[3] == {"snapshot": baseline.pk}
    assert params[5:7] == [{"action": "off", "vm": None}, {"action": "reset", "vm": router.pk}]


def test_bad_action_input_is_400_in_the_services_words():
    course = open_course(students=2)
    lab, other = ready_lab(course, 0), ready_lab(course, 1)
    baseline = _snapshot(lab, "Baseline", is_baseline=True)
    _snapshot(lab, "taken")
    elsewhere = _snapshot(other, "theirs")
    client = client_for(lab.student)
    base = f"/api/v1/labs/{lab.pk}"

    def refused(method, url, body=None):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 400, (url, response.json())
        return response.json()

    assert refused("post", f"{base}/snapshots/", {"name": "  "})["errors"] == {"name": ["Give the snapshot a name."]}
    assert refused("post", f"{base}/snapshots/", {"name": "taken"})["errors"] == {
        "name": ["This lab already has a snapshot called taken."]
    }
    assert refused("delete", f"{base}/snapshots/{baseline.pk}/")["detail"] == (
        "The baseline snapshot is what Reset returns to; it cannot be deleted."
    )
    assert refused("post", f"{base}/revert/", {"snapshot": elsewhere.pk})["errors"] == {
        "snapshot": ["That snapshot belongs to another lab."]
    }
    assert refused("post", f"{base}/revert/", {"snapshot": 999999})["errors"] == {
        "snapshot": ["No snapshot with that id."]
    }
    assert "action" in refused("post", f"{base}/power/", {"action": "explode"})["errors"]
    assert refused("post", f"{base}/power/", {"action": "on", "vm": other.vms.first().pk})["errors"] == {
        "vm": ["That VM belongs to another lab."]
    }
    assert client.delete(f"{base}/snapshots/{elsewhere.pk}/").status_code == 404
    assert not Operation.objects.filter(lab=lab).exclude(kind="provision").exists()


def test_a_busy_lab_answers_409_naming_the_running_operation():
    course = open_course()
    lab = ready_lab(course)
    baseline = _snapshot(lab, "Baseline", is_baseline=True)
    taken = _snapshot(lab, "taken", parent=baseline)
    client = client_for(lab.student)
    base = f"/api/v1/labs/{lab.pk}"
    running = client.post(f"{base}/snapshots/", {"name": "first"}, format="json").json()

    for method, url, body in [
        ("post", f"{base}/snapshots/", {"name": "second"}),
        ("delete", f"{base}/snapshots/{taken.pk}/", None),
        ("post", f"{base}/revert/", {"snapshot": baseline.pk}),
        ("post", f"{base}/reset/", None),
        ("post", f"{base}/clone/", None),
        ("post", f"{base}/power/", {"action": "off"}),
        ("delete", f"{base}/", None),
    ]:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 409, (url, response.json())
        assert response.json()["detail"].startswith(f"{lab.name} is busy: take snapshot #{running['id']} is queued.")
    assert Operation.objects.filter(lab__source_lab=lab).count() == 0
    assert Operation.objects.filter(lab=lab, state="queued").count() == 1


def test_quota_refusals_answer_403_naming_the_limit():
    course = open_course(students=2, quota={"snapshots_per_lab": 0, "labs_per_student": 1})
    lab = ready_lab(course)
    client = client_for(lab.student)
    snapshot = client.post(f"/api/v1/labs/{lab.pk}/snapshots/", {"name": "one"}, format="json")
    assert snapshot.status_code == 403
    assert snapshot.json()["detail"] == (
        "This lab cannot keep another snapshot; delete one first: none are allowed in this course (you have 0)."
    )
    clone = client.post(f"/api/v1/labs/{lab.pk}/clone/")
    assert clone.status_code == 403
    assert clone.json()["detail"] == "You cannot have another lab in this course: the limit is 1 and 1 are in use."

    Lab.objects.filter(pk=lab.pk).update(running_since=None)
    from courses import services as course_services

    course_services.quota_update(course=course, actor=AdminFactory(), running_labs=1)
    ready_lab(course, 1)  # takes the only running slot
    power = client.post(f"/api/v1/labs/{lab.pk}/power/", {"action": "on"}, format="json")
    assert power.status_code == 403
    assert power.json()["detail"] == "No more labs can run at once in this class: the limit is 1 and 1 are in use."
    assert not Operation.objects.filter(lab=lab).exclude(kind="provision").exists()


# The console: a session key for the relay, never a vCenter ticket or host


@pytest.fixture
def console_lab(vcsim):
    """A ready lab whose esxi-01 is the simulator's demo VM, powered on as far as the portal knows."""
    course = open_course()
    lab = ready_lab(course)
    endpoint = simulator_endpoint(vcsim)
    moref = endpoint_client(endpoint).get(DEMO_ESXI).moref
    Lab.objects.filter(pk=lab.pk).update(endpoint=endpoint)
    lab.vms.filter(role="esxi-01").update(moref=moref, power_state="poweredOn")
    lab.refresh_from_db()
    return lab


@pytest.mark.parametrize("who", ["student", "instructor", "admin"])
def test_opening_a_console_gives_a_session_key_and_never_a_ticket(console_lab, who, vcsim):
    """Finding 1 (docs/security.md): the old link carried a clone ticket, a whole vCenter session."""
    esxi = console_lab.vms.get(role="esxi-01")
    user = {
        "student": console_lab.student,
        "instructor": console_lab.course.instructors.get(),
        "admin": AdminFactory(),
    }[who]
    response = client_for(user).post(f"/api/v1/labs/{console_lab.pk}/vms/{esxi.pk}/console/", {}, format="json")
    assert response.status_code == 201
    body = response.json()
    session = ConsoleSession.objects.get(pk=body["id"])
    assert body["websocket_path"] == f"/ws/console/{session.key}/"
    assert (body["mode"], body["state"], body["vm"], body["user"]) == ("control", "pending", esxi.pk, user.username)
    text = response.content.decode()
    host = vcsim.consoles()
    assert str(host["port"]) not in text and host["thumbprint"] not in text and "ticket" not in text
    listed = client_for(user).get("/api/v1/console-sessions/").json()["results"]
    assert [row["id"] for row in listed] == [session.pk] and "websocket_path" not in listed[0]


def test_console_refusals(console_lab):
    client = client_for(console_lab.student)
    other_lab = ready_lab(console_lab.course, 1)
    foreign_vm = other_lab.vms.first()
    url = f"/api/v1/labs/{console_lab.pk}/vms/{{}}/console/"
    assert client.post(url.format(foreign_vm.pk), {}, format="json").status_code == 404
    assert client_for(other_lab.student).post(url.format(console_lab.vms.first().pk), {}).status_code == 404
    router = console_lab.vms.get(role="router")
    LabVM.objects.filter(pk=router.pk).update(power_state="poweredOff")
    off = client.post(url.format(router.pk), {}, format="json")
    assert (off.status_code, off.json()["detail"]) == (400, "router is powered off: power it on to use its console.")
    esxi = console_lab.vms.get(role="esxi-01")
    observe = client.post(url.format(esxi.pk), {"mode": "observe"}, format="json")
    assert observe.status_code == 403
    assert observe.json()["detail"] == "Only the course's instructors and admins observe a student's console."
    wrong = client.post(url.format(esxi.pk), {"mode": "x" * 500}, format="json")
    assert wrong.status_code == 400 and len(wrong.json()["detail"]) < 200


def test_the_limit_of_open_consoles_is_a_403_in_words(console_lab, settings):
    settings.NESTLAB_CONSOLE_SESSIONS_PER_USER = 2
    client = client_for(console_lab.student)
    url = f"/api/v1/labs/{console_lab.pk}/vms/{console_lab.vms.get(role='esxi-01').pk}/console/"
    assert [client.post(url, {}, format="json").status_code for _ in range(2)] == [201, 201]
    third = client.post(url, {}, format="json")
    assert third.status_code == 403
    assert third.json()["detail"] == "You already have 2 consoles open, the most allowed: close one first."
    first = ConsoleSession.objects.filter(user=console_lab.student).order_by("pk").first()
    closed = client.post(f"/api/v1/console-sessions/{first.pk}/close/")
    assert (closed.status_code, closed.json()["state"]) == (200, "closed")
    assert client.post(url, {}, format="json").status_code == 201


# Who may do what: the owner, the course's instructors and admins; nobody else sees the lab


def _routes(lab: Lab) -> list[tuple[str, str, dict | None]]:
    baseline = lab.snapshots.get(is_baseline=True)
    taken = lab.snapshots.get(is_baseline=False)
    vm = lab.vms.get(role="esxi-01")
    base = f"/api/v1/labs/{lab.pk}"
    operation = Operation.objects.filter(lab=lab).first()
    return [
        ("get", f"{base}/", None),
        ("get", f"/api/v1/operations/{operation.pk}/", None),
        ("post", f"{base}/snapshots/", {"name": "new one"}),
        ("delete", f"{base}/snapshots/{taken.pk}/", None),
        ("post", f"{base}/revert/", {"snapshot": baseline.pk}),
        ("post", f"{base}/reset/", None),
        ("post", f"{base}/power/", {"action": "off"}),
        ("post", f"{base}/power/", {"action": "reset", "vm": vm.pk}),
        ("post", f"{base}/clone/", None),
        ("delete", f"{base}/", None),
    ]


@pytest.fixture
def matrix_lab(console_lab):
    baseline = _snapshot(console_lab, "Baseline", is_baseline=True)
    _snapshot(console_lab, "taken", parent=baseline)
    return console_lab


@pytest.mark.parametrize("who", ["owner", "instructor", "admin"])
def test_the_owner_the_course_instructor_and_an_admin_may_do_everything(matrix_lab, who):
    user = {
        "owner": matrix_lab.student,
        "instructor": matrix_lab.course.instructors.get(),
        "admin": AdminFactory(),
    }[who]
    client = client_for(user)
    for method, url, body in _routes(matrix_lab):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code in (200, 202), (who, url, response.json())
        idle(matrix_lab)
    # snapshot, delete snapshot, revert, reset, power twice, delete (the clone's operation is on the new lab)
    mine = Operation.objects.filter(lab=matrix_lab, actor=user).exclude(kind="provision")
    assert mine.count() == 7
    assert client_for(user).get("/api/v1/labs/", {"course": matrix_lab.course_id}).json()["count"] >= 1


@pytest.mark.parametrize("who", ["classmate", "other_instructor", "other_student"])
def test_another_student_or_another_courses_instructor_finds_no_lab(matrix_lab, who):
    other_course = open_course()
    user = {
        "classmate": student_of(matrix_lab.course, 1),
        "other_instructor": other_course.instructors.get(),
        "other_student": student_of(other_course),
    }[who]
    before = Operation.objects.count()
    client = client_for(user)
    for method, url, body in _routes(matrix_lab):
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 404, (who, url, response.json())
    assert Operation.objects.count() == before
    assert matrix_lab.pk not in {row["id"] for row in client.get("/api/v1/labs/").json()["results"]}
    assert matrix_lab.pk not in {
        row["lab"] for row in client.get("/api/v1/operations/", {"lab": matrix_lab.pk}).json()["results"]
    }


def test_anonymous_callers_are_refused():
    course = open_course()
    lab = ready_lab(course)
    client = APIClient()
    assert client.get("/api/v1/labs/").status_code == 403
    assert client.get(f"/api/v1/labs/{lab.pk}/").status_code == 403
    assert client.post(f"/api/v1/labs/{lab.pk}/reset/").status_code == 403


def test_an_invalid_power_action_repeats_at_most_40_characters_of_it():
    """Issue 10: a 200 KB action came back whole in the error."""
    lab = ready_lab(open_course(students=1))
    response = client_for(lab.student).post(f"/api/v1/labs/{lab.pk}/power/", {"action": "x" * 200_000}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["action"] == [f"“{'x' * 40}…” is not one of the choices: on, off, reset."]
    assert len(response.content) < 500
    assert not Operation.objects.filter(lab=lab, kind=Operation.Kind.POWER).exists()


# Conditional reads (issue 16): a poll that changed nothing answers 304


def _vm_seen(lab: Lab, **fields) -> None:
    """A VM changed as the watcher or a job changes one: saved, then pushed (its seq moves)."""
    from labs import realtime

    vm = lab.vms.first()
    for name, value in fields.items():
        setattr(vm, name, value)
    vm.save(update_fields=list(fields))
    realtime.vm_changed(vm)


def _snapshot_taken(lab: Lab, name: str) -> None:
    """A snapshot recorded as the snapshot job records one (the tree is pushed: the lab's seq moves)."""
    from labs import realtime

    _snapshot(lab, name)
    realtime.snapshots_changed(lab)


def _poll(client, url: str, etag: str | None = None):
    return client.get(url, HTTP_IF_NONE_MATCH=etag) if etag else client.get(url)


def test_a_lab_read_again_unchanged_is_a_304_and_any_change_gives_a_new_etag():
    course = open_course(students=1)
    lab = ready_lab(course)
    client = client_for(lab.student)
    url = f"/api/v1/labs/{lab.pk}/"
    first = _poll(client, url)
    etag = first["ETag"]
    assert first.status_code == 200 and etag
    again = _poll(client, url, etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag

    changes = [
        lambda: _vm_seen(lab, guest_ip="10.0.0.7"),
        # A power change written without its message (no seq moved) still changes the tag: a
        # browser revalidates its cached answer by itself and would keep showing the old power.
        lambda: LabVM.objects.filter(pk=lab.vms.first().pk).update(
            power_state=LabVM.PowerState.OFF if lab.vms.first().is_on else LabVM.PowerState.ON
        ),
        lambda: _snapshot_taken(lab, "before the upgrade"),
        lambda: Lab.objects.filter(pk=lab.pk).update(lease_extensions_used=1),
        lambda: services.lab_power(lab=lab, actor=lab.student, action="on"),
        lambda: Operation.objects.filter(lab=lab, state=Operation.State.QUEUED).update(progress=40, step="Powering on"),
    ]
    for number, change in enumerate(changes):
        change()
        changed = _poll(client, url, etag)
        assert changed.status_code == 200, f"change {number} answered 304"
        assert changed["ETag"] != etag
        etag = changed["ETag"]
        assert _poll(client, url, etag).status_code == 304


def test_an_etag_opens_nothing_to_someone_who_may_not_see_the_lab():
    course = open_course(students=2)
    lab = ready_lab(course)
    etag = _poll(client_for(lab.student), f"/api/v1/labs/{lab.pk}/")["ETag"]
    assert _poll(client_for(student_of(course, 1)), f"/api/v1/labs/{lab.pk}/", etag).status_code == 404


def test_an_operation_read_again_unchanged_is_a_304_until_it_moves():
    course = open_course(students=1)
    lab = ready_lab(course)
    operation = services.lab_power(lab=lab, actor=lab.student, action="off")
    client = client_for(lab.student)
    url = f"/api/v1/operations/{operation.pk}/"
    etag = _poll(client, url)["ETag"]
    assert _poll(client, url, etag).status_code == 304
    Operation.objects.filter(pk=operation.pk).update(heartbeat_at=timezone.now())
    assert _poll(client, url, etag).status_code == 200


def test_an_operation_polled_without_its_etag_answers_what_it_is_now():
    """The answer of an unchanged operation is built once (labs.api.views._OPERATION_ANSWERS, by
    ETag); any change moves the ETag, so the next answer is built afresh."""
    course = open_course(students=1)
    lab = ready_lab(course)
    operation = services.lab_power(lab=lab, actor=lab.student, action="off")
    client = client_for(lab.student)
    url = f"/api/v1/operations/{operation.pk}/"
    first, again = client.get(url), client.get(url)
    assert (first.json(), first["ETag"]) == (again.json(), again["ETag"])
    Operation.objects.filter(pk=operation.pk).update(progress=40, step="Powering off esxi-01")
    moved = client.get(url)
    assert moved["ETag"] != first["ETag"]
    assert (moved.json()["progress"], moved.json()["step"]) == (40, "Powering off esxi-01")


# Pinned query counts of the routes a class polls (issue 16): a change that adds a query to one
# of them fails here by name, whatever the size of the class.

HOT_ROUTE_QUERIES = {
    # Session look-ups aside (the client is authenticated directly): what the route itself asks.
    # Read first: what the ETag is made of (two), then the lab, VMs, networks, snapshots, roles,
    # the busy check (one for clones and its own).
    "lab": 8,
    "lab_again": 2,  # unchanged, without the ETag: what it is made of, then the answer built before
    "lab_unchanged": 2,  # only what the ETag is made of (labs.selectors.lab_detail_version)
    "operation": 1,
    "operation_unchanged": 1,
    # Roles, count, page, the busy check, and whether the reader teaches the course (once per
    # course: its staff read failures in vCenter's words, labs.permissions.sees_failure_detail).
    "class_labs": 5,
}


def _queries(client, url: str, **headers) -> tuple[object, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    return response, len(captured)


@pytest.mark.parametrize("students", [1, 6])
def test_the_hot_routes_cost_a_pinned_number_of_queries(students):
    course = open_course(students=students)
    labs = [ready_lab(course, index) for index in range(students)]
    lab = labs[0]
    operation = lab.operations.first()
    student = client_for(lab.student)
    got = {}
    answer, got["lab"] = _queries(student, f"/api/v1/labs/{lab.pk}/")
    again, got["lab_again"] = _queries(student, f"/api/v1/labs/{lab.pk}/")
    assert (again.json(), again["ETag"]) == (answer.json(), answer["ETag"])
    unchanged, got["lab_unchanged"] = _queries(student, f"/api/v1/labs/{lab.pk}/", HTTP_IF_NONE_MATCH=answer["ETag"])
    assert (answer.status_code, unchanged.status_code) == (200, 304)
    answer, got["operation"] = _queries(student, f"/api/v1/operations/{operation.pk}/")
    unchanged, got["operation_unchanged"] = _queries(
        student, f"/api/v1/operations/{operation.pk}/", HTTP_IF_NONE_MATCH=answer["ETag"]
    )
    assert (answer.status_code, unchanged.status_code) == (200, 304)
    listed, got["class_labs"] = _queries(client_for(course.instructors.get()), f"/api/v1/labs/?course={course.pk}")
    assert listed.status_code == 200 and listed.json()["count"] == students
    assert got == HOT_ROUTE_QUERIES


# The actions a class sends (bench/load_api.py), with every quota limit set so each check runs.
# Authentication aside (the client is authenticated directly) and the "go" message aside (it is
# sent after the commit, which a test's transaction never reaches): bench/request_cost.py counts
# those too (docs/benchmarks.md).
ACTION_QUERIES = {
    # Roles, course, enrollment; the quota locked, the course again under it, top-ups, the class's
    # totals, running labs (two), the student's hours, the lab's number; the vCenters its version
    # serves and the course allows (labs.placement, one query); the lab, its VMs and its
    # networks inserted (the endpoint locked, its VLANs read); the operation, its audit entry
    # (with a savepoint of its own), the lab's push; the transaction's savepoint and its release.
    "start": 24,
    # The student's roles are read by their first request only (the client keeps the user).
    "snapshot": 14,  # roles, the lab, enrollment; quota, lab locked, busy, its snapshots; the rest as above
    "revert": 13,  # the lab, the snapshot, enrollment; quota, lab locked, busy; the rest as above
    "reset": 13,  # the lab, enrollment; quota, lab locked, busy, its baseline; the rest as above
}


def test_the_lab_actions_cost_a_pinned_number_of_queries():
    from courses.models import CourseQuota

    course = open_course(students=2)
    version = course.template_version
    CourseQuota.objects.filter(course=course).update(
        running_labs=10,
        labs_per_student=1,
        snapshots_per_lab=5,
        vcpu_total=10 * version.vcpu_total,
        memory_gb_total=1000,
        storage_gb_total=10_000,
        lab_hours_per_student=10,
    )
    lab = ready_lab(course)
    lab.vms.update(power_state=LabVM.PowerState.ON)
    on = {str(vm.pk): LabVM.PowerState.ON for vm in lab.vms.all()}
    baseline = _snapshot(lab, "Baseline", is_baseline=True, power_states=on)
    student = client_for(lab.student)
    got = {}
    answer, got["snapshot"] = _posted(student, f"/api/v1/labs/{lab.pk}/snapshots/", {"name": "cluster built"})
    assert answer.status_code == 202, answer.json()
    idle(lab)
    answer, got["revert"] = _posted(student, f"/api/v1/labs/{lab.pk}/revert/", {"snapshot": baseline.pk})
    assert answer.status_code == 202, answer.json()
    idle(lab)
    answer, got["reset"] = _posted(student, f"/api/v1/labs/{lab.pk}/reset/", {})
    assert answer.status_code == 202 and Operation.objects.get(pk=answer.json()["id"]).params["reverts"] is True
    answer, got["start"] = _posted(client_for(student_of(course, 1)), "/api/v1/labs/", {"course": course.pk})
    assert answer.status_code == 202, answer.json()
    assert got == ACTION_QUERIES


def _posted(client, url: str, data: dict) -> tuple[object, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, data, format="json")
    return response, len(captured)


def test_a_warm_pool_lab_is_nobodys_to_read_or_act_on_by_its_id():
    """Held already, pinned here: a pool lab (student NULL) is no one's lab in the API or on the
    pages, not even its course's instructors' (the pool's own routes show it), so a student who
    guesses its id cannot read it, power it, take a snapshot, open a console or check its guide."""
    from django.test import Client

    from labs.models import WarmPool
    from tests.factories import lab_row

    course = open_course(students=1)
    WarmPool.objects.create(course=course, size=1)
    pooled = lab_row(course, None, 0)
    vm = LabVM.objects.create(lab=pooled, role="router", name="pool-router", moref="vm-991", power_state="poweredOn")
    student, instructor = student_of(course), course.instructors.get()
    for user in (student, instructor, AdminFactory()):
        api = client_for(user)
        assert pooled.pk not in [lab["id"] for lab in api.get("/api/v1/labs/").json()["results"]]
        assert api.get(f"/api/v1/labs/{pooled.pk}/").status_code == 404
        assert api.post(f"/api/v1/labs/{pooled.pk}/power/", {"action": "on"}, format="json").status_code == 404
        assert api.post(f"/api/v1/labs/{pooled.pk}/snapshots/", {"name": "mine"}, format="json").status_code == 404
        assert api.post(f"/api/v1/labs/{pooled.pk}/vms/{vm.pk}/console/").status_code == 404
        assert api.get(f"/api/v1/labs/{pooled.pk}/guide/").status_code == 404
        page = Client()
        page.force_login(user)
        assert page.get(f"/labs/{pooled.pk}/").status_code == 404
        assert page.post(f"/labs/{pooled.pk}/power/", {"action": "on"}).status_code == 404
    assert not Operation.objects.filter(lab=pooled).exists()


def test_a_failed_build_tells_its_student_what_happened_without_vcenters_host_or_id():
    """The driver's words for an unreachable vCenter name its host and port; the lab's student
    reads what happened and what to do, and no vCenter id, in every answer of the lab and its
    operations; its course's instructors and admins keep the detail (docs/security.md, round 4)."""
    from tests.support.failures import VCENTER_HOST, fail_build

    course = open_course(students=1)
    student = student_of(course)
    lab = services.lab_start(course=course, student=student, actor=student).lab
    operation = fail_build(lab)

    api = client_for(student)
    answers = {
        "lab": api.get(f"/api/v1/labs/{lab.pk}/").json(),
        "labs": api.get("/api/v1/labs/").json()["results"][0],
        "operation": api.get(f"/api/v1/operations/{operation.pk}/").json(),
        "operations": api.get("/api/v1/operations/", {"lab": lab.pk}).json()["results"][0],
    }
    for name, body in answers.items():
        assert VCENTER_HOST not in str(body), name
        assert "could not be reached" in body["error"], name
    assert answers["lab"]["error"] == (
        "The lab could not be built: the lab servers could not be reached. Try again later or ask your instructor."
    )
    assert answers["lab"]["endpoint"] is None and answers["operation"]["endpoint"] is None

    for staff in (course.instructors.get(), AdminFactory()):
        api = client_for(staff)
        shown = api.get(f"/api/v1/labs/{lab.pk}/").json()
        assert f"{VCENTER_HOST}:443" in shown["error"] and shown["endpoint"] == lab.endpoint_id
        shown = api.get(f"/api/v1/operations/{operation.pk}/").json()
        assert f"{VCENTER_HOST}:443" in shown["error"] and shown["endpoint"] == lab.endpoint_id
    # The student's next poll is not served the staff's answer (the answer caches keep one per audience).
    assert VCENTER_HOST not in str(client_for(student).get(f"/api/v1/labs/{lab.pk}/").json())
    assert VCENTER_HOST not in str(client_for(student).get(f"/api/v1/operations/{operation.pk}/").json())


def test_a_start_refused_for_want_of_a_vlan_names_neither_the_vcenter_nor_its_range():
    """The refusal a student's Start gets said "<endpoint> has no free VLAN left in 100-100"."""
    course = open_course(students=2)
    endpoint = course.template_version.template.endpoint
    ready_lab(course, 0)
    taken = set(Lab.objects.get(course=course).networks.values_list("vlan_id", flat=True))
    type(endpoint).objects.filter(pk=endpoint.pk).update(vlan_min=min(taken), vlan_max=max(taken))
    second = student_of(course, 1)
    response = client_for(second).post("/api/v1/labs/", {"course": course.pk}, format="json")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "no free network left" in detail
    assert endpoint.name not in detail and str(min(taken)) not in detail
