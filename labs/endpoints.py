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


def console_client(endpoint: VCenterEndpoint) -> vsphere.VSphereClient:
    """A client on the endpoint's console account: console links carry a clone ticket of its
    session, so they must never come from the portal's own (all-powerful) account."""
    from django.core.exceptions import ValidationError

    if not endpoint.has_console_account:
        raise ValidationError(
            f"Consoles are not set up on {endpoint.name}: an admin has to give Nestlab a vCenter account "
            "that may only open consoles (see docs/deployment.md)."
        )
    return vsphere.get_client(
        vsphere.EndpointConfig(
            url=endpoint.url,
            username=endpoint.console_username,
            password=endpoint.get_console_password(),
            verify_tls=endpoint.verify_tls,
        )
    )
