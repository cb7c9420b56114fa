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


def endpoint_client(endpoint: VCenterEndpoint) -> vsphere.VSphereClient:
    """A client on this process's (and thread's) session for the endpoint; logs in on first use."""
    return vsphere.get_client(endpoint_config(endpoint))
