"""Endpoint URLs, API version choice, thumbprints, and the re-login / reconnect rules."""

from __future__ import annotations

import hashlib
import http.client
from types import SimpleNamespace

import pytest
from pyVmomi import VmomiSupport, vim

from labs.vsphere.connection import (
    ResilientStub,
    choose_version,
    parse_service_versions,
    parse_url,
    sha1_thumbprint,
)
from labs.vsphere.errors import InvalidArgument, Unreachable


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("vc.example.edu", ("https", "vc.example.edu", 443, "/sdk")),
        ("https://vc.example.edu", ("https", "vc.example.edu", 443, "/sdk")),
        ("HTTPS://VC.example.edu/", ("https", "vc.example.edu", 443, "/sdk")),
        ("http://127.0.0.1:8989/sdk", ("http", "127.0.0.1", 8989, "/sdk")),
        ("http://localhost", ("http", "localhost", 80, "/sdk")),
        ("https://vc:8443/custom/", ("https", "vc", 8443, "/custom")),
        ("  https://[fd00::1]/sdk  ", ("https", "fd00::1", 443, "/sdk")),
    ],
)
def test_parse_url(url, expected):
    address = parse_url(url)
    assert (address.scheme, address.host, address.port, address.path) == expected


def test_netloc_brackets_ipv6():
    assert parse_url("https://[fd00::1]:444").netloc == "[fd00::1]:444"
    assert parse_url("vc.example.edu").netloc == "vc.example.edu:443"


@pytest.mark.parametrize("url", ["", "   ", "ftp://vc.example.edu", "https://", "https://vc:99999", "https://vc:port"])
def test_bad_urls_are_refused_with_words(url):
    with pytest.raises(InvalidArgument) as caught:
        parse_url(url)
    assert "vCenter address" in str(caught.value)


def test_sha1_thumbprint_format():
    der = b"not really a certificate"
    expected = hashlib.sha1(der).hexdigest().upper()

    thumbprint = sha1_thumbprint(der)

    assert thumbprint.replace(":", "") == expected
    assert len(thumbprint.split(":")) == 20


SERVICE_VERSIONS = b"""<?xml version="1.0" encoding="UTF-8" ?>
<namespaces version="1.0">
 <namespace>
  <name>urn:vim25</name>
  <version>6.5</version>
  <priorVersions><version>6.0</version><version>5.5</version></priorVersions>
 </namespace>
 <namespace><name>urn:vim2</name><version>2.0</version></namespace>
</namespaces>"""


def test_service_versions_and_the_choice():
    versions = parse_service_versions(SERVICE_VERSIONS)

    assert versions == {"6.5", "6.0", "5.5"}
    chosen = choose_version(versions)
    assert VmomiSupport.versionIdMap[chosen] == "6.5"


def test_the_newest_common_version_is_chosen():
    newest = VmomiSupport.GetServiceVersions("vim25")[0]
    assert choose_version({"6.5", VmomiSupport.versionIdMap[newest]}) == newest


def test_no_common_version():
    with pytest.raises(Unreachable):
        choose_version({"99.0"})


class FakeSoap:
    """A SOAP stub that answers from a script: exceptions are raised, tuples returned."""

    version = "vim.version.version11"

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0
        self.dropped = 0

    def InvokeMethod(self, mo, info, args, outer):
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def DropConnections(self):
        self.dropped += 1


def stub_with(*answers):
    logins = []
    soap = FakeSoap(*answers)
    return ResilientStub(soap, lambda: logins.append(1)), soap, logins


def invoke(stub, method):
    return stub.InvokeMethod(None, SimpleNamespace(wsdlName=method), ())


def test_not_authenticated_logs_in_and_sends_again():
    stub, soap, logins = stub_with((500, vim.fault.NotAuthenticated()), (200, "vm-7"))

    assert invoke(stub, "CloneVM_Task") == "vm-7"
    assert (soap.calls, len(logins)) == (2, 1)


def test_logs_in_only_once_per_request():
    stub, _soap, logins = stub_with((500, vim.fault.NotAuthenticated()), (500, vim.fault.NotAuthenticated()))

    with pytest.raises(vim.fault.NotAuthenticated):
        invoke(stub, "PowerOnVM_Task")
    assert len(logins) == 1


def test_a_retrieval_with_unauthenticated_properties_logs_in_again():
    unauthenticated = SimpleNamespace(
        objects=[SimpleNamespace(missingSet=[SimpleNamespace(path="name", fault=vim.fault.NotAuthenticated())])]
    )
    stub, _soap, logins = stub_with((200, unauthenticated), (200, "fresh"))

    assert invoke(stub, "RetrievePropertiesEx") == "fresh"
    assert len(logins) == 1


def test_other_faults_are_raised_as_they_are():
    fault = vim.fault.InvalidPowerState()
    stub, soap, logins = stub_with((500, fault))

    with pytest.raises(vim.fault.InvalidPowerState):
        invoke(stub, "PowerOnVM_Task")
    assert (soap.calls, logins) == (1, [])


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ConnectionRefusedError(111, "refused")])
def test_undelivered_requests_are_sent_again_on_a_new_connection(error):
    stub, soap, _ = stub_with(error, (200, "task-1"))

    assert invoke(stub, "CloneVM_Task") == "task-1"
    assert soap.dropped == 1


def test_a_lost_answer_to_a_write_is_not_repeated():
    stub, soap, _ = stub_with(http.client.RemoteDisconnected("closed"), (200, "task-2"))

    with pytest.raises(Unreachable) as caught:
        invoke(stub, "CloneVM_Task")

    assert soap.calls == 1
    assert "may or may not have carried it out" in str(caught.value)


def test_a_lost_answer_to_a_read_is_repeated():
    stub, soap, _ = stub_with(http.client.RemoteDisconnected("closed"), (200, "result"))

    assert invoke(stub, "RetrievePropertiesEx") == "result"
    assert soap.calls == 2


def test_reconnects_only_once():
    stub, _soap, _ = stub_with(BrokenPipeError(32, "x"), ConnectionRefusedError(111, "refused"))

    with pytest.raises(ConnectionRefusedError):
        invoke(stub, "RetrievePropertiesEx")


def test_after_a_restart_reconnect_then_login():
    stub, soap, logins = stub_with(BrokenPipeError(32, "x"), (500, vim.fault.NotAuthenticated()), (200, "ok"))

    assert invoke(stub, "PowerOffVM_Task") == "ok"
    assert (soap.calls, len(logins)) == (3, 1)


def test_tls_contexts():
    import ssl

    from labs.vsphere.connection import ssl_context

    strict = ssl_context(True)
    assert (strict.verify_mode, strict.check_hostname) == (ssl.CERT_REQUIRED, True)
    loose = ssl_context(False)
    assert (loose.verify_mode, loose.check_hostname) == (ssl.CERT_NONE, False)
    with pytest.raises(InvalidArgument) as caught:
        ssl_context(True, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert "not valid PEM" in str(caught.value)
