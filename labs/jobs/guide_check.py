""" "Check my work": a guide step's checks run on a lab, inside its guests, with no network path in.

A command check runs a shell script in the named VM through VMware Tools (guest operations:
labs.vsphere.guest) with the template's guest account; a VM-state check reads the VM from
vCenter; a question compares the student's answer. Each check ends passed or not, with words
that say why; a check that could not run (wrong guest password, Tools not running, VM off, past
its time limit) fails in words, and the operation still succeeds: it did check. Only a vCenter
that cannot be reached fails the operation.
"""

from __future__ import annotations

import logging
from typing import Any

from core import crypto
from courses import guides
from courses.models import GuideCheck
from labs import capacity
from labs import guides as lab_guides
from labs.jobs.lab_ops import LabJob
from labs.jobs.runner import OperationFailed, register
from labs.models import LabVM, Operation
from labs.vsphere import (
    GuestCredentials,
    GuestLoginFailed,
    GuestProgramTimeout,
    GuestToolsNotRunning,
    InvalidState,
    NotFound,
    Unreachable,
    VSphereError,
)

PASSED = "Passed."
# A check's output kept for the student and the instructor (the end of it: errors come last).
OUTPUT_MAX_BYTES = 64 * 1024

logger = logging.getLogger(__name__)


@register
class CheckStep(LabJob):
    kind = Operation.Kind.CHECK
    # A check changes nothing: the lab stays ready (and its buttons on) while it runs.
    busy_state = None

    def perform(self) -> None:
        operation = self.context.operation
        if operation.attempts > 1:
            # Resumed after its worker died: the dead run's guest-operation slot is free now, not
            # when its lease runs out a minute later.
            capacity.release_owner(operation.endpoint_id, f"operation-{operation.pk}", line=capacity.GUEST_OPERATIONS)
        params = self.context.operation.params
        lab = self.lab
        step = lab_guides.guide_step(lab, params["step"])
        checks = step["checks"]
        outcomes = []
        for check in checks:
            with self.context.step(f"Checking: {check['label']}", share=90 / len(checks)):
                outcomes.append(self.run_check(check, params))
        checked = lab_guides.check_results_record(
            lab=lab, step=step, outcomes=outcomes, operation=self.context.operation
        )
        self.context.result.update(
            step=step["key"],
            passed=checked.passed,
            total=checked.total,
            completed=checked.result.is_completed,
            checks={outcome.check_key: outcome.passed for outcome in outcomes if not outcome.skipped},
            summary=self.summary(step, checked),
        )

    @staticmethod
    def summary(step: dict[str, Any], checked: lab_guides.StepChecked) -> str:
        if checked.newly_completed:
            points = f" (+{step['points']} points)" if step["points"] else ""
            return f"Step done: all {checked.total} checks passed{points}."
        if checked.result.is_completed:
            return f"{checked.passed} of {checked.total} checks pass now; the step was done already."
        return f"{checked.passed} of {checked.total} checks pass: not done yet."

    def run_check(self, check: dict[str, Any], params: dict[str, Any]) -> lab_guides.CheckOutcome:
        kind = check["kind"]
        if kind == GuideCheck.Kind.QUESTION:
            if not params.get("by_student"):
                return lab_guides.CheckOutcome(check["key"], skipped=True)
            answer = params.get("answers", {}).get(check["key"], "")
            if not answer.strip():
                return lab_guides.CheckOutcome(check["key"], words="No answer given.")
            try:
                passed = guides.answer_matches(check, answer, self.lab.variables)
            except guides.PatternTooSlow:
                words = "Your answer could not be compared in time (the question's pattern is too slow for it)."
                return lab_guides.CheckOutcome(check["key"], words=words, answer=answer)
            words = "Correct." if passed else "That is not the expected answer."
            return lab_guides.CheckOutcome(check["key"], passed=passed, words=words, answer=answer)
        vm = self.lab.vms.filter(role=check["vm_role"]).exclude(moref="").first()
        if vm is None or vm.power_state == LabVM.PowerState.MISSING:
            return lab_guides.CheckOutcome(check["key"], words=f"The lab has no VM {check['vm_role']} in vCenter.")
        try:
            if kind == GuideCheck.Kind.VM_STATE:
                return self.vm_state(check, vm)
            return self.command(check, vm)
        except Unreachable as error:
            raise OperationFailed(f"vCenter could not be reached, so nothing was checked: {error}") from error

    def vm_state(self, check: dict[str, Any], vm: LabVM) -> lab_guides.CheckOutcome:
        try:
            info = self.context.client.vm_info(vm.moref)
        except NotFound:
            return lab_guides.CheckOutcome(check["key"], words=f"{vm.role} is gone from vCenter.")
        expected = guides.fill(check["expected"], self.lab.variables).strip()
        prop = check["vm_property"]
        if prop == GuideCheck.VMProperty.POWER_STATE:
            actual = "on" if info.power_state == LabVM.PowerState.ON else "off"
            passed, words = actual == expected.lower(), f"{vm.role} is powered {actual}."
        elif prop == GuideCheck.VMProperty.NESTED_HV:
            actual = "on" if info.nested_hv else "off"
            passed, words = actual == expected.lower(), f"Nested virtualization is {actual} on {vm.role}."
        elif prop == GuideCheck.VMProperty.CPU_COUNT:
            passed, words = str(info.num_cpu) == expected, f"{vm.role} has {info.num_cpu} CPUs."
        elif prop == GuideCheck.VMProperty.MEMORY_MB:
            passed, words = str(info.memory_mb) == expected, f"{vm.role} has {info.memory_mb} MB of memory."
        else:  # a snapshot of this name exists
            names = [snapshot.name for snapshot in info.all_snapshots()]
            passed = expected in names
            words = (
                f"{vm.role} has a snapshot called {expected}."
                if passed
                else f"{vm.role} has no snapshot called {expected}."
            )
        return lab_guides.CheckOutcome(check["key"], passed=passed, words=words if passed else f"Not yet: {words}")

    def command(self, check: dict[str, Any], vm: LabVM) -> lab_guides.CheckOutcome:
        account = (self.lab.template_version.guest_accounts or {}).get(vm.role)
        if not account:
            return lab_guides.CheckOutcome(
                check["key"], words=f"The template gives no guest account for {vm.role}: tell your instructor."
            )
        if vm.power_state != LabVM.PowerState.ON:
            return lab_guides.CheckOutcome(
                check["key"], words=f"{vm.role} is powered off: power it on, wait for it to boot, and check again."
            )
        credentials = GuestCredentials(account["username"], crypto.decrypt(account["password_ciphertext"]))
        values = self.lab.variables
        environment = {f"NESTLAB_{name.upper()}": value for name, value in values.items()}
        endpoint = self.context.operation.endpoint

        def waiting(ahead: int) -> None:
            self.context.note(f"Waiting for vCenter: {ahead} checks ahead.")

        try:
            # Guest operations have a line of their own per endpoint (labs.capacity): a class
            # graded at once stays within the endpoint's limit and never waits behind builds.
            with capacity.vcenter_slot(
                endpoint_id=endpoint.pk,
                limit=endpoint.concurrency_limit,
                on_wait=waiting,
                owner=f"operation-{self.context.operation.pk}",
                line=capacity.GUEST_OPERATIONS,
            ):
                result = self.context.client.run_guest_script(
                    vm.moref,
                    credentials,
                    guides.fill(check["command"], values),
                    timeout=check["timeout_seconds"],
                    max_output_bytes=OUTPUT_MAX_BYTES,
                    environment=environment,
                )
        except GuestLoginFailed:
            words = (
                f"{vm.role} refused the check's guest account (the template's user name or password): "
                "tell your instructor."
            )
            return lab_guides.CheckOutcome(check["key"], words=words)
        except GuestToolsNotRunning:
            words = f"VMware Tools are not running in {vm.role}: wait for it to finish booting, then check again."
            return lab_guides.CheckOutcome(check["key"], words=words)
        except GuestProgramTimeout:
            words = f"The check did not finish within {check['timeout_seconds']} s in {vm.role}, so it was stopped."
            return lab_guides.CheckOutcome(check["key"], words=words)
        except InvalidState:
            words = f"{vm.role} is powered off: power it on, wait for it to boot, and check again."
            return lab_guides.CheckOutcome(check["key"], words=words)
        except NotFound:
            return lab_guides.CheckOutcome(check["key"], words=f"{vm.role} is gone from vCenter.")
        except Unreachable:
            raise
        except VSphereError as error:
            # vCenter's words (a privilege, an inventory id, a host) are for staff: the log has them;
            # the result is shown to the student (docs/security.md, round 4).
            logger.warning("Lab %s: a check could not run in %s: %s", self.lab.pk, vm.role, error)
            words = (
                f"The check could not run in {vm.role}: the lab servers reported a problem. "
                "Try again later or ask your instructor."
            )
            return lab_guides.CheckOutcome(check["key"], words=words)
        output = result.output
        if result.exit_code != check["exit_code"]:
            words = f"Not yet: the check ended with exit code {result.exit_code} (it passes with {check['exit_code']})."
            return lab_guides.CheckOutcome(check["key"], words=words, output=output)
        pattern = guides.fill(check["output_pattern"], values)
        try:
            found = not pattern or guides.pattern_found(pattern, output)
        except guides.PatternTooSlow:
            words = f"The check's pattern took too long on what {vm.role} printed: tell your instructor."
            return lab_guides.CheckOutcome(check["key"], words=words, output=output)
        if not found:
            words = "Not yet: the check's output does not show what it looks for."
            return lab_guides.CheckOutcome(check["key"], words=words, output=output)
        return lab_guides.CheckOutcome(check["key"], passed=True, words=PASSED, output=output)
