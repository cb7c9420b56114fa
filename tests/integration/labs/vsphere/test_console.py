"""The console link: a clone ticket that really logs a browser in, and vCenter's identity."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from pyVmomi import SoapStubAdapter, vim

from .conftest import ESXI

pytestmark = pytest.mark.integration


def test_console_url(client, vcsim, vc):
    moref = vc.find(ESXI)._moId

    url = client.console_url(ESXI)

    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert parts.path == "/ui/webconsole.html"
    assert parts.netloc == f"{vcsim.host}:{vcsim.port}"
    assert query["vmId"] == moref
    assert query["vmName"] == "esxi-01"
    assert query["serverGuid"] == vc.content.about.instanceUuid
    assert query["host"] == f"{vcsim.host}:{vcsim.port}"
    assert "thumbprint" not in query  # plain http: no certificate

    # The ticket is a real one: an unauthenticated connection can become the session with it.
    stub = SoapStubAdapter(host=vcsim.host, port=-vcsim.port, path="/sdk", version=vc.si._stub.version)
    content = vim.ServiceInstance("ServiceInstance", stub).RetrieveContent()
    content.sessionManager.CloneSession(query["sessionTicket"])
    assert content.sessionManager.currentSession.userName == vcsim.username


def test_each_link_has_a_new_ticket(client):
    first = parse_qs(urlsplit(client.console_url(ESXI)).query)["sessionTicket"]
    second = parse_qs(urlsplit(client.console_url(ESXI)).query)["sessionTicket"]
    assert first != second
