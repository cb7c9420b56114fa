"""The bridge from a stored endpoint (courses) to a driver session (labs.vsphere)."""

from __future__ import annotations

from courses.models import VCenterEndpoint
from labs import vsphere


def endpoint_config(endpoint: VCenterEndpoint) -> vsphere.EndpointConfig:
    return vsphere.EndpointConfig(
        url=endpoint.url,
        username=endpoint.username,
        password=endpoint.get_password(),
        verify_tls=endpoint.verify_tls,
    )


def endpoint_client(endpoint: VCenterEndpoint) -> vsphere.Client:
    """The per-process (and per-thread) session for this endpoint, logging in if needed."""
    return vsphere.connect(endpoint_config(endpoint))
