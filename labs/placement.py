"""Which vCenter a new lab is built on, when a course may use several (issue 13, item 4).

A new lab (a student's Start, a class provisioned, a class session, a pool build) goes to the
endpoint with the most room at that moment, among those that

- hold a ready baseline of the lab's template version (``courses.models.VersionBaseline``),
- the course allows (``Course.endpoints``; none chosen: every one its version serves),
- are not in maintenance (a flag admins set),
- were not found unreachable in the last ``UNREACHABLE_SECONDS`` (a build or an endpoint
  check that could not connect says so here, in Redis, so every web process and worker knows),
- stay within their limits of running VMs, memory and storage (blank: no limit) with the lab.

Room is the free clone slots: the concurrency limit less the slots held, the clones waiting
for one and the builds waiting in the endpoint's build line (``labs.capacity``); between equals,
the endpoint with fewer labs being built per slot of its limit, then with fewer labs in all per
slot, then the one named first.

Clones of a lab stay on their source lab's endpoint (they copy its VMs), so they never come here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis
from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, Q, Sum

from courses.models import Course, TemplateVersion, VCenterEndpoint, VersionBaseline
from labs import capacity
from labs.models import Lab, LabVM

logger = logging.getLogger(__name__)

# How long an endpoint that could not be reached takes no new labs; a successful endpoint
# check (or a build that reached it) gives it labs again sooner.
UNREACHABLE_SECONDS = 60


def _unreachable_key(endpoint_id: int) -> str:
    return f"nestlab:endpoint:{endpoint_id}:unreachable"


def endpoint_unreachable_mark(*, endpoint_id: int, reason: str) -> None:
    """Remember for a while that an endpoint could not be reached (and why, in words)."""
    try:
        capacity._redis().set(_unreachable_key(endpoint_id), reason[:500], ex=UNREACHABLE_SECONDS)
    except redis.RedisError:
        logger.warning("Cannot record in Redis that endpoint %s is unreachable", endpoint_id)


def endpoint_reachable_mark(*, endpoint_id: int) -> None:
    """The endpoint answered: it takes new labs again."""
    try:
        capacity._redis().delete(_unreachable_key(endpoint_id))
    except redis.RedisError:
        logger.warning("Cannot record in Redis that endpoint %s is reachable", endpoint_id)


def _unreachable_reasons(endpoint_ids: list[int]) -> dict[int, str]:
    if not endpoint_ids:
        return {}
    values = capacity._redis().mget([_unreachable_key(endpoint_id) for endpoint_id in endpoint_ids])
    return {
        endpoint_id: value.decode() if isinstance(value, bytes) else value
        for endpoint_id, value in zip(endpoint_ids, values, strict=True)
        if value is not None
    }


@dataclass
class EndpointLoad:
    """One endpoint's load right now, for placement and for the admins' page and API."""

    endpoint: VCenterEndpoint
    labs_building: int = 0
    labs_running: int = 0
    labs_held: int = 0
    """Labs that hold vCenter resources there, whatever their state."""
    vms: int = 0
    """Lab VMs powered on, and those of labs being built (they are powered on at the end)."""
    memory_mb: int = 0
    """Memory configured on those VMs."""
    storage_gb: float = 0.0
    """Disk of every lab that holds vCenter resources there."""
    slots_in_use: int = 0
    clones_waiting: int = 0
    builds_in_line: int = 0
    unreachable: str = ""
    """Why it could not be reached lately, in words ("" when it could)."""
    limits_hit: list[str] = field(default_factory=list)

    @property
    def in_maintenance(self) -> bool:
        return self.endpoint.in_maintenance

    @property
    def free_slots(self) -> int:
        """Clone slots left once the clones and builds already waiting have theirs (may be negative)."""
        return self.endpoint.concurrency_limit - self.slots_in_use - self.clones_waiting - self.builds_in_line

    @property
    def refusal(self) -> str:
        """Why it takes no new lab now, in words ("" when it does, as far as its state goes)."""
        if self.endpoint.in_maintenance:
            return f"{self.endpoint.name} is in maintenance"
        if self.unreachable:
            return f"{self.endpoint.name} could not be reached lately ({self.unreachable})"
        return ""

    def limit_refusal(self, *, vms: int, memory_mb: int, disk_gb: float) -> str:
        """Why a lab of this size would break one of the endpoint's limits, in words ("" if not)."""
        endpoint = self.endpoint
        name = endpoint.name
        if endpoint.max_running_vms is not None and self.vms + vms > endpoint.max_running_vms:
            return f"{name} is at its limit of {endpoint.max_running_vms} running VMs ({self.vms} now)"
        if endpoint.max_memory_gb is not None and self.memory_mb + memory_mb > endpoint.max_memory_gb * 1024:
            return (
                f"{name} is at its limit of {endpoint.max_memory_gb} GB of memory ({self.memory_mb / 1024:.0f} GB now)"
            )
        if endpoint.max_storage_gb is not None and self.storage_gb + disk_gb > endpoint.max_storage_gb:
            return f"{name} is at its limit of {endpoint.max_storage_gb} GB of storage ({self.storage_gb:.0f} GB now)"
        return ""

    def rank(self) -> tuple:
        """Sort key: most free slots first, then fewest builds per slot, fewest labs per slot, then by name."""
        limit = self.endpoint.concurrency_limit
        return (-self.free_slots, self.labs_building / limit, self.labs_held / limit, self.endpoint.name)


def endpoint_loads(endpoints: list[VCenterEndpoint] | None = None) -> list[EndpointLoad]:
    """The load of the given endpoints (every endpoint when None), in their order, in three
    queries and one Redis round trip per endpoint. Redis down: slots and reachability read as
    unknown (zero, reachable) rather than refusing the page."""
    endpoints = list(VCenterEndpoint.objects.all()) if endpoints is None else list(endpoints)
    ids = [endpoint.pk for endpoint in endpoints]
    loads = {endpoint.pk: EndpointLoad(endpoint=endpoint) for endpoint in endpoints}
    active = Lab.objects.filter(endpoint_id__in=ids, state__in=Lab.ACTIVE_STATES)
    for row in active.values("endpoint_id").annotate(
        building=Count("pk", filter=Q(state=Lab.State.PROVISIONING)), held=Count("pk"), storage=Sum("disk_gb")
    ):
        load = loads[row["endpoint_id"]]
        load.labs_building, load.labs_held = row["building"], row["held"]
        load.storage_gb = float(row["storage"] or 0)
    counted = Q(power_state=LabVM.PowerState.ON) | Q(lab__state=Lab.State.PROVISIONING)
    vms = LabVM.objects.filter(counted, lab__endpoint_id__in=ids, lab__state__in=Lab.ACTIVE_STATES)
    for row in vms.values("lab__endpoint_id").annotate(
        vms=Count("pk"),
        memory=Sum("memory_mb"),
        running_labs=Count("lab", filter=Q(power_state=LabVM.PowerState.ON), distinct=True),
    ):
        load = loads[row["lab__endpoint_id"]]
        load.vms, load.memory_mb, load.labs_running = row["vms"], row["memory"] or 0, row["running_labs"]
    try:
        connection = capacity._redis()
        for endpoint_id, load in loads.items():
            load.slots_in_use, load.clones_waiting = capacity.in_use(endpoint_id, client=connection)
            load.builds_in_line = capacity.build_line_length(endpoint_id, client=connection)
        for endpoint_id, reason in _unreachable_reasons(ids).items():
            loads[endpoint_id].unreachable = reason
    except redis.RedisError:
        logger.warning("Cannot read the endpoints' capacity from Redis", exc_info=True)
    return [loads[endpoint_id] for endpoint_id in ids]


def course_endpoint_q(course: Course, field: str = "endpoint_id") -> Q:
    """Rows (labs by default; endpoints with ``field="pk"``) on a vCenter the course allows: its
    choice, or any when it made none. A subquery: no statement of its own."""
    chosen = Course.endpoints.through.objects.filter(course_id=course.pk)
    return Q(**{f"{field}__in": chosen.values("vcenterendpoint_id")}) | ~Exists(chosen)


def in_maintenance_q(field: str = "endpoint_id") -> Q:
    """Rows (labs by default) on a vCenter in maintenance, where no new lab goes: a pool lab
    there is neither handed over nor counted as the pool's. A subquery, no join (a lock taken
    with it stays the lab's alone)."""
    return Q(**{f"{field}__in": VCenterEndpoint.objects.filter(in_maintenance=True).values("pk")})


def lab_endpoint(*, course: Course, version: TemplateVersion) -> VCenterEndpoint:
    """The endpoint a new lab of the course is built on now, or a refusal in words."""
    # One query (a Start's statements are pinned): the endpoints holding the version's ready
    # baseline, narrowed to the course's choice when it made one (courses.selectors.course_endpoints).
    candidates = list(
        VCenterEndpoint.objects.filter(baselines__version=version, baselines__state=VersionBaseline.State.READY)
        .filter(course_endpoint_q(course, "pk"))
        .order_by("name")
    )
    if not candidates:
        raise ValidationError(
            f"{version} is not published to any vCenter {course.code} may use: publish it again, "
            "or change the course's vCenters."
        )
    if len(candidates) == 1 and not candidates[0].in_maintenance and not _has_limits(candidates[0]):
        # One endpoint and nothing to weigh: the lab goes there (unreachable or not, the build says).
        return candidates[0]
    # Limits are reserved, not only checked: two courses placing at once (each under its own
    # quota lock) would both see the same room. The endpoints with limits stay locked until the
    # new lab is committed (the caller's transaction), in one order, so the next placer counts it.
    limited = [endpoint.pk for endpoint in candidates if _has_limits(endpoint)]
    if limited:
        list(VCenterEndpoint.objects.select_for_update().filter(pk__in=limited).order_by("pk").values_list("pk"))
    sizes = {
        "vms": version.vm_count,
        "memory_mb": version.memory_mb_total,
        "disk_gb": version.disk_gb_total,
    }
    open_ones, refusals = [], []
    for load in endpoint_loads(candidates):
        refusal = load.refusal or load.limit_refusal(**sizes)
        if refusal:
            refusals.append(refusal)
        else:
            open_ones.append(load)
    if not open_ones:
        # The words reach whoever clicked, a student too: which vCenters, their limits and load,
        # and a connection error's host and port stay in the log and the admins' loads.
        logger.warning("No vCenter can take a new lab of %s now: %s", course.code, "; ".join(refusals))
        raise ValidationError(
            f"No vCenter can take a new lab of {course.code} now. Try again in a few minutes, or ask an admin."
        )
    return min(open_ones, key=EndpointLoad.rank).endpoint


def _has_limits(endpoint: VCenterEndpoint) -> bool:
    return any(
        limit is not None for limit in (endpoint.max_running_vms, endpoint.max_memory_gb, endpoint.max_storage_gb)
    )
