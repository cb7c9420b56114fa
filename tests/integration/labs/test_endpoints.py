"""labs/endpoints.py: from a stored endpoint to driver clients."""

import pytest
from django.core.exceptions import ValidationError

from courses import services
from tests.factories import AdminFactory, EndpointFactory

pytestmark = pytest.mark.django_db


def test_console_links_come_from_the_console_account():
    from labs.endpoints import console_client

    endpoint = EndpointFactory()
    with pytest.raises(ValidationError, match="Consoles are not set up"):
        console_client(endpoint)
    services.endpoint_update(
        endpoint=endpoint,
        actor=AdminFactory(),
        console_username="console@vsphere.local",
        console_password="Console!pass#42",
    )
    assert console_client(endpoint).endpoint.username == "console@vsphere.local"
