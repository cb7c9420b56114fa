"""The launcher's guest operations (vcsim/guest.go, shell.go): GuestProcessManager and
GuestFileManager as vSphere offers them, driven through pyVmomi, with the transfer URLs
fetched over HTTP as a client of ESXi would."""

from __future__ import annotations

import asyncio
import shlex
import time
import urllib.error
import urllib.request
import uuid

import pytest
from pyVim.connect import Disconnect
from pyVmomi import vim

from portal import simulator
from tests.integration.vcsim.test_launcher import connect, find, props, watch_task
from tests.integration.vcsim.test_webmks import open_console
from tests.support.rfb import CONTROL_L

pytestmark = pytest.mark.integration

AUTH = vim.vm.guest.NamePasswordAuthentication(username=simulator.GUEST_USERNAME, password=simulator.GUEST_PASSWORD)


@pytest.fixture
def si(vcsim):
    service = connect(vcsim)
    yield service
    Disconnect(service)


@pytest.fixture
def guest_vm(si, vcsim):
    """A powered-on VM of the test's own (Tools running); destroyed afterwards."""
    source = find(si, "DC0/vm/DC0_H0_VM0")
    watch = watch_task(
        si,
        source.CloneVM_Task(
            folder=find(si, "DC0/vm"),
            name=f"guest-{uuid.uuid4().hex[:8]}",
            spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec()),
        ),
    )
    vm = watch.result
    watch_task(si, vm.PowerOnVM_Task())
    yield vm
    if props(si, vm, "runtime.powerState")["runtime.powerState"] == "poweredOn":
        watch_task(si, vm.PowerOffVM_Task())
    watch_task(si, vm.Destroy_Task())


@pytest.fixture
def guest_ops(si):
    manager = si.content.guestOperationsManager
    return manager.processManager, manager.fileManager


def start(guest_ops, vm, program: str, arguments: str = "", *, auth=AUTH, **spec) -> int:
    processes, _ = guest_ops
    return processes.StartProgramInGuest(
        vm, auth, vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments, **spec)
    )


def wait_exit(guest_ops, vm, pid: int, *, timeout: float = 10.0):
    processes, _ = guest_ops
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (info,) = processes.ListProcessesInGuest(vm, AUTH, [pid])
        if info.endTime is not None:
            return info
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still running after {timeout} s")


def exit_code(info) -> int:
    assert info.exitCode is not None, "an ended process has an exit code, 0 included"
    return info.exitCode


def run(guest_ops, vm, program: str, arguments: str = "") -> int:
    return exit_code(wait_exit(guest_ops, vm, start(guest_ops, vm, program, arguments)))


def download(guest_ops, vm, path: str) -> bytes:
    _, files = guest_ops
    info = files.InitiateFileTransferFromGuest(vm, AUTH, path)
    with urllib.request.urlopen(info.url, timeout=10) as response:
        data = response.read()
    assert len(data) == info.size
    return data


def upload(guest_ops, vm, path: str, data: bytes, *, overwrite: bool = True) -> str:
    _, files = guest_ops
    url = files.InitiateFileTransferToGuest(
        vm, AUTH, path, vim.vm.guest.FileManager.PosixFileAttributes(), len(data), overwrite
    )
    request = urllib.request.Request(url, data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return url


def test_a_programs_exit_code_and_output_read_back_from_the_guest(vcsim, guest_ops, guest_vm):
    pid = start(guest_ops, guest_vm, "/bin/sh", '-c "echo hello > /tmp/out; cat /nope >> /tmp/out 2>&1; exit 3"')
    info = wait_exit(guest_ops, guest_vm, pid)
    assert (info.pid, info.name, info.exitCode) == (pid, "sh", 3)
    assert info.cmdLine.startswith('"/bin/sh" -c')
    assert info.owner == simulator.GUEST_USERNAME
    assert info.startTime <= info.endTime
    assert download(guest_ops, guest_vm, "/tmp/out") == b"hello\ncat: /nope: No such file or directory\n"


def test_the_scripted_commands(guest_ops, guest_vm):
    assert run(guest_ops, guest_vm, "/usr/bin/test", "-e /done") == 1
    assert run(guest_ops, guest_vm, "/usr/bin/touch", "/done") == 0
    assert run(guest_ops, guest_vm, "/usr/bin/test", "-f /done") == 0
    assert run(guest_ops, guest_vm, "/bin/sh", "-c 'test -d /done || echo \"ok  2\" >> /tmp/log'") == 0
    assert run(guest_ops, guest_vm, "/bin/grep", "-q 'ok  2' /tmp/log") == 0
    assert run(guest_ops, guest_vm, "/bin/grep", "-q missing /tmp/log") == 1
    assert run(guest_ops, guest_vm, "/bin/grep", "-q x /tmp/none") == 2
    assert run(guest_ops, guest_vm, "/bin/sh", "-c 'false && touch /no; true || touch /no2'") == 0
    assert run(guest_ops, guest_vm, "/bin/sh", "-c '[ -e /no ] || [ -e /no2 ]'") == 1
    assert run(guest_ops, guest_vm, "/bin/sh", "-c 'nosuchcommand > /tmp/err 2>&1'") == 127
    assert download(guest_ops, guest_vm, "/tmp/err") == b"sh: 1: nosuchcommand: not found\n"
    assert run(guest_ops, guest_vm, "/bin/sh", "-c 'ls | wc'") == 2, "pipes are not simulated"
    # Arguments go through /bin/sh, as VMware Tools runs programs on Linux guests.
    assert run(guest_ops, guest_vm, "/bin/cat", "/etc/hostname > /tmp/host") == 0
    assert download(guest_ops, guest_vm, "/tmp/host") == f"{guest_vm._moId}\n".encode()


def test_environment_and_working_directory(guest_ops, guest_vm):
    pid = start(
        guest_ops,
        guest_vm,
        "/bin/sh",
        '-c "echo $LAB_ID ${HOME} > out; pwd >> out"',
        workingDirectory="/tmp",
        envVariables=["LAB_ID=42"],
    )
    assert exit_code(wait_exit(guest_ops, guest_vm, pid)) == 0
    assert download(guest_ops, guest_vm, "/tmp/out") == b"42 /root\n/tmp\n"


def test_an_uploaded_script_runs_and_a_transfer_url_works_once(guest_ops, guest_vm):
    url = upload(guest_ops, guest_vm, "/root/check.sh", b"test -f /etc/hostname && echo PASS > /tmp/result\n")
    with pytest.raises(urllib.error.HTTPError) as reused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="PUT"), timeout=10)
    assert reused.value.code == 404
    assert run(guest_ops, guest_vm, "/bin/sh", "/root/check.sh") == 0
    assert download(guest_ops, guest_vm, "/tmp/result") == b"PASS\n"
    _, files = guest_ops
    with pytest.raises(vim.fault.FileAlreadyExists):
        files.InitiateFileTransferToGuest(
            guest_vm, AUTH, "/root/check.sh", vim.vm.guest.FileManager.PosixFileAttributes(), 1, False
        )


def test_a_sleeping_program_has_no_end_until_terminated(guest_ops, guest_vm):
    processes, _ = guest_ops
    pid = start(guest_ops, guest_vm, "/bin/sleep", "30")
    time.sleep(0.2)
    (info,) = processes.ListProcessesInGuest(guest_vm, AUTH, [pid])
    assert info.endTime is None and info.name == "sleep"
    assert info.exitCode in (None, 0), "no exit code while it runs"
    processes.TerminateProcessInGuest(guest_vm, AUTH, pid)
    info = wait_exit(guest_ops, guest_vm, pid, timeout=3)
    assert info.exitCode == 143  # 128 + SIGTERM
    with pytest.raises(vim.fault.GuestProcessNotFound):
        processes.TerminateProcessInGuest(guest_vm, AUTH, pid)
    short = start(guest_ops, guest_vm, "/bin/sh", "-c 'sleep 0.3; touch /slept'")
    assert exit_code(wait_exit(guest_ops, guest_vm, short)) == 0
    assert run(guest_ops, guest_vm, "/usr/bin/test", "-e /slept") == 0
    assert {p.pid for p in processes.ListProcessesInGuest(guest_vm, AUTH)} >= {pid, short}


def test_wrong_guest_password(guest_ops, guest_vm, vcsim):
    wrong = vim.vm.guest.NamePasswordAuthentication(username="root", password="wrong")
    with pytest.raises(vim.fault.InvalidGuestLogin):
        start(guest_ops, guest_vm, "/bin/true", auth=wrong)
    vcsim.set_guest(guest_vm._moId, username="student", password="s3cret")
    try:
        with pytest.raises(vim.fault.InvalidGuestLogin):
            start(guest_ops, guest_vm, "/bin/true")
        own = vim.vm.guest.NamePasswordAuthentication(username="student", password="s3cret")
        processes, _ = guest_ops
        pid = start(guest_ops, guest_vm, "/bin/true", auth=own)
        assert processes.ListProcessesInGuest(guest_vm, own, [pid])[0].owner == "student"
    finally:
        vcsim.set_guest(guest_vm._moId, username="", password="")


def test_tools_not_running(si, guest_ops, guest_vm, vcsim):
    deadline = time.monotonic() + 5
    while props(si, guest_vm, "guest.toolsRunningStatus")["guest.toolsRunningStatus"] != "guestToolsRunning":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert props(si, guest_vm, "guest.guestState")["guest.guestState"] == "running"
    vcsim.set_guest(guest_vm._moId, tools_running=False)
    try:
        with pytest.raises(vim.fault.GuestOperationsUnavailable):
            start(guest_ops, guest_vm, "/bin/true")
        state = props(si, guest_vm, "guest.toolsRunningStatus", "guest.guestState")
        assert state == {"guest.toolsRunningStatus": "guestToolsNotRunning", "guest.guestState": "notRunning"}
    finally:
        vcsim.set_guest(guest_vm._moId, tools_running=True)
    assert run(guest_ops, guest_vm, "/bin/true") == 0


def test_vm_powered_off(si, guest_ops, guest_vm):
    watch_task(si, guest_vm.PowerOffVM_Task())
    with pytest.raises(vim.fault.InvalidPowerState) as refused:
        start(guest_ops, guest_vm, "/bin/true")
    assert refused.value.existingState == "poweredOff"
    _, files = guest_ops
    with pytest.raises(vim.fault.InvalidPowerState):
        files.InitiateFileTransferFromGuest(guest_vm, AUTH, "/etc/hostname")
    time.sleep(0.1)
    assert props(si, guest_vm, "guest.toolsRunningStatus")["guest.toolsRunningStatus"] == "guestToolsNotRunning"


def test_a_missing_file_or_program(guest_ops, guest_vm):
    _, files = guest_ops
    with pytest.raises(vim.fault.FileNotFound) as missing:
        files.InitiateFileTransferFromGuest(guest_vm, AUTH, "/tmp/nothing")
    assert missing.value.file == "/tmp/nothing"
    with pytest.raises(vim.fault.NotAFile):
        files.InitiateFileTransferFromGuest(guest_vm, AUTH, "/tmp")
    with pytest.raises(vim.fault.FileNotFound):
        upload(guest_ops, guest_vm, "/no/such/dir/file", b"x")
    with pytest.raises(vim.fault.FileNotFound):
        start(guest_ops, guest_vm, "/opt/tool/run")


def test_the_guest_file_system_cannot_be_left(guest_ops, guest_vm, vcsim):
    assert run(guest_ops, guest_vm, "/bin/sh", "-c 'echo x > /../../../escaped'") == 0
    sandbox = vcsim.guests()["vms"][guest_vm._moId]["sandbox"]
    assert download(guest_ops, guest_vm, "/escaped") == b"x\n"
    assert sandbox.startswith(vcsim.guests()["root"])


def test_a_line_typed_on_the_console_runs_in_the_guest(vcsim, guest_ops, guest_vm):
    ticket = guest_vm.AcquireTicket("webmks")

    async def type_line():
        socket, client = await open_console(ticket)
        await client.handshake()
        await client.type("touch /done\necho typed > /tmp/console\nnope\n")
        await socket.close()

    asyncio.run(type_line())
    deadline = time.monotonic() + 5
    while "not found" not in vcsim.consoles()["screens"][guest_vm._moId]["text"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert run(guest_ops, guest_vm, "/usr/bin/test", "-e /done") == 0
    assert download(guest_ops, guest_vm, "/tmp/console") == b"typed\n"
    assert vcsim.consoles()["screens"][guest_vm._moId]["text"].endswith("nope\nsh: 1: nope: not found\n")


def test_ctrl_c_at_the_console_stops_the_line_and_drops_what_was_typed_ahead(vcsim, guest_ops, guest_vm):
    ticket = guest_vm.AcquireTicket("webmks")

    async def interrupt():
        socket, client = await open_console(ticket)
        await client.handshake()
        await client.type("sleep 30; touch /slept\ntouch /typed-ahead\n")
        await asyncio.sleep(0.3)
        await client.key(CONTROL_L, down=True)
        await client.tap(ord("c"))
        await client.key(CONTROL_L, down=False)
        await client.type("touch /fresh\n")
        await socket.close()

    started = time.monotonic()
    asyncio.run(interrupt())
    deadline = time.monotonic() + 5
    while run(guest_ops, guest_vm, "/usr/bin/test", "-e /fresh") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert time.monotonic() - started < 10
    assert run(guest_ops, guest_vm, "/bin/sh", "-c 'test -e /slept || test -e /typed-ahead'") == 1
    assert "^C\ntouch /fresh\n" in vcsim.consoles()["screens"][guest_vm._moId]["text"]


def test_a_powered_off_clone_has_no_tools_running(si):
    source = find(si, "DC0/vm/DC0_H0_VM0")
    assert props(si, source, "runtime.powerState", "guest.toolsRunningStatus") == {
        "runtime.powerState": "poweredOn",
        "guest.toolsRunningStatus": "guestToolsRunning",
    }, "the stock VMs are on, with Tools running"
    clone = watch_task(
        si,
        source.CloneVM_Task(
            folder=find(si, "DC0/vm"),
            name=f"guest-{uuid.uuid4().hex[:8]}",
            spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec()),
        ),
    ).result
    wanted = {
        "runtime.powerState": "poweredOff",
        "guest.toolsRunningStatus": "guestToolsNotRunning",
        "guest.guestState": "notRunning",
    }
    try:
        deadline = time.monotonic() + 3
        while (state := props(si, clone, *wanted)) != wanted:
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
    finally:
        watch_task(si, clone.Destroy_Task())


@pytest.mark.parametrize(
    ("script", "status", "output"),
    [
        ("echo \"a  b\" 'c d' e\\ f", 0, "a  b c d e f\n"),
        ("echo -n x; echo y # a comment", 0, "xy\n"),
        ("echo one>/tmp/f; echo two >>/tmp/f; cat /tmp/f", 0, "one\ntwo\n"),
        ("cat /none 2>/dev/null; echo x >/dev/null; cat /dev/null; echo $HOME", 0, "/root\n"),
        ("cat /none 2>/tmp/e >&2; cat /tmp/e", 0, "cat: /none: No such file or directory\n"),
        ("cd /tmp && pwd; cd /none", 2, "/tmp\nsh: 1: cd: can't cd to /none\n"),
        ("sh -c 'exit 5'; echo after $NOPE.", 0, "after .\n"),
        ("[ ! -e /x ] && [ 3 -lt 12 ] && test abc = abc", 0, ""),
        ("test 1 -eq; test -e /dev/null", 0, "sh: test: 1: unexpected operator\n"),
        ("echo ab > /tmp/g; echo AB >> /tmp/g; grep -ci ab /tmp/g; grep -v a /tmp/g", 0, "2\nAB\n"),
        ("mkdir -p /a/b && touch /a/b/c && rm /a/b/c && test -e /a/b/c", 1, ""),
        ("echo $(id)", 2, "sh: $(...) is not simulated\n"),
        ("echo 'unterminated", 2, "sh: unterminated quoted string\n"),
        ("&& true", 2, "sh: syntax error near unexpected token '&&'\n"),
    ],
)
def test_the_shell(guest_ops, guest_vm, script, status, output):
    arguments = "-c " + shlex.quote(script) + " > /tmp/o 2>&1"
    assert run(guest_ops, guest_vm, "/bin/sh", arguments) == status
    assert download(guest_ops, guest_vm, "/tmp/o").decode() == output


def set_extra_config(si, vm, **options: str) -> None:
    spec = vim.vm.ConfigSpec(
        extraConfig=[vim.option.OptionValue(key=key, value=value) for key, value in options.items()]
    )
    watch_task(si, vm.ReconfigVM_Task(spec=spec))


def run_split(guest_ops, vm, script: str) -> tuple[int, str, str]:
    """The script's exit status, stdout and stderr."""
    arguments = "-c " + shlex.quote(script) + " > /tmp/stdout 2> /tmp/stderr"
    status = run(guest_ops, vm, "/bin/sh", arguments)
    return status, download(guest_ops, vm, "/tmp/stdout").decode(), download(guest_ops, vm, "/tmp/stderr").decode()


def test_guestinfo_variables_from_the_vms_extra_config(si, guest_ops, guest_vm):
    set_extra_config(si, guest_vm, **{"guestinfo.nestlab.lab_code": "k7q2"})
    for script in (
        'vmtoolsd --cmd "info-get guestinfo.nestlab.lab_code"',
        "/usr/bin/vmtoolsd --cmd='info-get guestinfo.nestlab.lab_code'",
        "vmware-rpctool 'info-get guestinfo.nestlab.lab_code'",
    ):
        assert run_split(guest_ops, guest_vm, script) == (0, "k7q2\n", ""), script

    # The current ExtraConfig is read each time: the last value set wins, "" unsets it.
    set_extra_config(si, guest_vm, **{"guestinfo.nestlab.lab_code": "z9"})
    assert run_split(guest_ops, guest_vm, "vmware-rpctool 'info-get guestinfo.nestlab.lab_code'") == (0, "z9\n", "")
    set_extra_config(si, guest_vm, **{"guestinfo.nestlab.lab_code": ""})
    assert run_split(guest_ops, guest_vm, "vmware-rpctool 'info-get guestinfo.nestlab.lab_code'") == (
        1,
        "",
        "No value found\n",
    )


@pytest.mark.parametrize(
    ("script", "stderr"),
    [
        ('vmtoolsd --cmd "info-get guestinfo.missing"', "No value found\n"),
        ("vmware-rpctool 'info-get govcsim'", "No value found\n"),  # only guestinfo.* is readable
        ("vmtoolsd --cmd 'log hello'", "Unknown command\n"),
        ("vmware-rpctool", "rpctool syntax:\n\n  rpctool <text>\n\n"),
    ],
)
def test_guestinfo_failures(guest_ops, guest_vm, script, stderr):
    assert run_split(guest_ops, guest_vm, script) == (1, "", stderr)
