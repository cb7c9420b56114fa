"""The console URL, built from plain values."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from labs.vsphere.connection import parse_url
from labs.vsphere.console import build_console_url


def build(url="https://vc.example.edu", **overrides):
    values = dict(
        address=parse_url(url),
        vm_moref="vm-42",
        vm_name="lab 7 esxi-01",
        server_guid="dbed6e0c-bd88-4ef6-b594-21283e1c677f",
        ticket="cst-VCT-52f0-ab--tp-AB-CD",
        thumbprint="AB:CD:EF",
    )
    values.update(overrides)
    return build_console_url(**values)


def test_the_vsphere_client_console_url():
    url = build()

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "vc.example.edu", "/ui/webconsole.html")
    assert parse_qs(parts.query) == {
        "vmId": ["vm-42"],
        "vmName": ["lab 7 esxi-01"],
        "serverGuid": ["dbed6e0c-bd88-4ef6-b594-21283e1c677f"],
        "locale": ["en_US"],
        "host": ["vc.example.edu:443"],
        "sessionTicket": ["cst-VCT-52f0-ab--tp-AB-CD"],
        "thumbprint": ["AB:CD:EF"],
    }
    assert "vmName=lab%207%20esxi-01" in url  # %20, not "+": the console decodes URI components


def test_a_port_other_than_443_stays_in_the_address():
    parts = urlsplit(build("https://vc.example.edu:8443/sdk"))

    assert parts.netloc == "vc.example.edu:8443"
    assert parse_qs(parts.query)["host"] == ["vc.example.edu:8443"]


def test_no_thumbprint_without_tls():
    query = parse_qs(urlsplit(build("http://127.0.0.1:8989/sdk", thumbprint=None)).query)

    assert "thumbprint" not in query
    assert query["host"] == ["127.0.0.1:8989"]


def test_ipv6_host():
    assert urlsplit(build("https://[fd00::5]")).netloc == "[fd00::5]"
