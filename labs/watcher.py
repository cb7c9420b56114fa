"""The vSphere watcher: one thread per endpoint follows every lab VM with the driver's
``watch_vms`` and hands what it sees to ``services.lab_vms_observed``, which updates the
database and pushes to browsers. Run by ``manage.py runwatcher`` (runportal starts it)."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection

from courses.models import VCenterEndpoint
from labs import placement, services
from labs.endpoints import endpoint_client

log = logging.getLogger(__name__)


def labs_folder(endpoint: VCenterEndpoint) -> str:
    return endpoint.labs_folder_path


class EndpointWatcher(threading.Thread):
    """Follows one endpoint's lab VMs until stopped."""

    def __init__(self, endpoint: VCenterEndpoint, *, max_wait: int = 5) -> None:
        super().__init__(name=f"watcher-{endpoint.pk}", daemon=True)
        self.endpoint = endpoint
        self.max_wait = max_wait
        self.stopping = threading.Event()

    def run(self) -> None:
        log.info("Watching the lab VMs of %s", self.endpoint.name)
        try:
            endpoint_client(self.endpoint).watch_vms(
                labs_folder(self.endpoint),
                self._apply,
                self.stopping,
                max_wait=self.max_wait,
                on_reachability=self._reachability,
            )
        finally:
            connection.close()

    def _reachability(self, reachable: bool, words: str) -> None:
        # Placement sends no new lab to an endpoint found unreachable (labs.placement): known from
        # here within seconds and kept known while it lasts (each retry, at most 30 s apart,
        # marks it again for UNREACHABLE_SECONDS), not only after a student's build failed there.
        if reachable:
            placement.endpoint_reachable_mark(endpoint_id=self.endpoint.pk)
            log.info("%s answers again", self.endpoint.name)
        else:
            placement.endpoint_unreachable_mark(endpoint_id=self.endpoint.pk, reason=words)

    def _apply(self, updates: list, full_resync: bool) -> None:
        close_old_connections()
        try:
            services.lab_vms_observed(endpoint_id=self.endpoint.pk, updates=updates, full_resync=full_resync)
        except Exception:
            # A database hiccup must not stop the watcher: the next full resync mends it.
            log.exception("Could not apply %d VM update(s) from %s", len(updates), self.endpoint.name)

    def stop(self) -> None:
        self.stopping.set()


class WatcherPool:
    """A watcher per endpoint, following endpoints as admins add, change or remove them."""

    def __init__(self, *, max_wait: int = 5) -> None:
        self.max_wait = max_wait
        self.watchers: dict[int, tuple[tuple, EndpointWatcher]] = {}

    def refresh(self) -> None:
        close_old_connections()
        current = {endpoint.pk: endpoint for endpoint in VCenterEndpoint.objects.all()}
        for endpoint_id, (signature, watcher) in list(self.watchers.items()):
            endpoint = current.get(endpoint_id)
            if endpoint is None or _signature(endpoint) != signature:
                watcher.stop()
                del self.watchers[endpoint_id]
        for endpoint_id, endpoint in current.items():
            if endpoint_id not in self.watchers:
                watcher = EndpointWatcher(endpoint, max_wait=self.max_wait)
                watcher.start()
                self.watchers[endpoint_id] = (_signature(endpoint), watcher)

    def stop(self) -> None:
        for _, watcher in self.watchers.values():
            watcher.stop()
        for _, watcher in self.watchers.values():
            watcher.join(timeout=self.max_wait + 5)
        self.watchers.clear()


def _signature(endpoint: VCenterEndpoint) -> tuple:
    return (endpoint.url, endpoint.username, endpoint.password_ciphertext, endpoint.datacenter, endpoint.verify_tls)
