"""The wire: endpoint URLs, TLS, API version negotiation, and a SOAP stub that re-logs in.

``ResilientStub`` sits between pyVmomi's managed objects and its SOAP adapter. For each
request it handles two things that happen to long-lived sessions:

* ``NotAuthenticated`` (the session expired, or vCenter restarted): log in again and send
  the same request once more. This is always safe: vCenter refused the request unread.
  A property retrieval may instead come back with a NotAuthenticated fault per property
  (the simulator does this); that counts the same.
* a broken connection (vCenter restarted, a stale keep-alive socket): open a new one and
  send again once, but only when the request surely did not arrive (connection refused,
  broken pipe) or it only reads. A task-starting request whose answer was lost is not
  repeated: the caller gets ``Unreachable`` and can look up what happened.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import threading
from collections.abc import Callable
from urllib.parse import urlsplit
from xml.etree import ElementTree

from pyVmomi import SoapStubAdapter, VmomiSupport, vim
from pyVmomi.SoapAdapter import StubAdapterBase

from .errors import InvalidArgument, Unreachable, is_connection_error, translate
from .types import Address

DEFAULT_PATH = "/sdk"

# Methods that only read (or are harmless to repeat): resent after a reconnect even if
# the first attempt may have reached vCenter.
_REPEATABLE_PREFIXES = (
    "Retrieve",
    "ContinueRetrieve",
    "Fetch",
    "Find",
    "Query",
    "WaitForUpdates",
    "CheckForUpdates",
    "CurrentTime",
    "CreateContainerView",
    "CreatePropertyCollector",
    "CreateFilter",
    "AcquireCloneTicket",
    "SessionIsActive",
)
# Errors raised before the request can have been read by the server.
_NOT_DELIVERED = (ConnectionRefusedError, BrokenPipeError, socket.gaierror)


def parse_url(url: str) -> Address:
    """Parse an endpoint URL; a bare host name means https://host:443/sdk."""
    text = (url or "").strip()
    if not text:
        raise InvalidArgument("The vCenter address is empty.")
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"The vCenter address '{url}' is not a valid URL ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidArgument(f"The vCenter address '{url}' must start with https:// or http://.")
    if not parts.hostname:
        raise InvalidArgument(f"The vCenter address '{url}' has no host name.")
    path = parts.path.rstrip("/") or DEFAULT_PATH
    if port is None:
        port = 443 if scheme == "https" else 80
    return Address(scheme=scheme, host=parts.hostname, port=port, path=path)


def ssl_context(verify_tls: bool, ca_pem: str | None = None) -> ssl.SSLContext:
    """Verify against the system CAs (plus ``ca_pem``), or not at all."""
    if verify_tls:
        context = ssl.create_default_context()
        if ca_pem:
            try:
                context.load_verify_locations(cadata=ca_pem)
            except (ssl.SSLError, ValueError) as exc:
                raise InvalidArgument(f"The CA certificate is not valid PEM ({exc}).") from None
        return context
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def sha1_thumbprint(der_certificate: bytes) -> str:
    """The SHA-1 thumbprint vSphere shows for a certificate: "AB:CD:...", uppercase."""
    digest = hashlib.sha1(der_certificate).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def choose_version(server_versions: set[str]) -> str:
    """The newest pyVmomi vim25 version the server lists (pyVmomi's version names)."""
    for version in VmomiSupport.GetServiceVersions("vim25"):
        if VmomiSupport.versionIdMap.get(version) in server_versions:
            return version
    raise Unreachable("The server does not offer a vSphere API version this driver understands.")


def parse_service_versions(xml_text: bytes | str) -> set[str]:
    """Version ids ("8.0.3.0", ...) from vimServiceVersions.xml, for the urn:vim25 namespace."""
    root = ElementTree.fromstring(xml_text)
    versions: set[str] = set()
    for namespace in root.iter("namespace"):
        if (namespace.findtext("name") or "").strip() != "urn:vim25":
            continue
        for node in namespace.iter("version"):
            if node.text:
                versions.add(node.text.strip())
    return versions


def probe(address: Address, context: ssl.SSLContext, timeout: float) -> tuple[str, str | None]:
    """Ask the server which API versions it speaks; also read its certificate thumbprint.

    Done with a plain HTTP GET under our own timeout, so an unreachable address fails in
    ``timeout`` seconds with words instead of hanging in pyVmomi's negotiation.
    """
    if address.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            address.host, address.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(address.host, address.port, timeout=timeout)
    where = address.netloc
    try:
        conn.request("GET", address.path + "/vimServiceVersions.xml")
        thumbprint = None
        if isinstance(conn.sock, ssl.SSLSocket):
            der = conn.sock.getpeercert(binary_form=True)
            thumbprint = sha1_thumbprint(der) if der else None
        response = conn.getresponse()
        body = response.read()
    except Exception as exc:
        raise translate(exc, where=where) from exc
    finally:
        conn.close()
    if response.status != 200:
        raise Unreachable(
            f"{where} answered HTTP {response.status} for {address.path}: it does not look like a vCenter."
        )
    try:
        versions = parse_service_versions(body)
    except ElementTree.ParseError:
        raise Unreachable(f"{where} does not look like a vCenter (no API version list).") from None
    return choose_version(versions), thumbprint


def soap_stub(address: Address, version: str, context: ssl.SSLContext, timeout: float) -> SoapStubAdapter:
    # pyVmomi's convention: a negative port means plain http.
    port = address.port if address.scheme == "https" else -address.port
    return SoapStubAdapter(
        host=address.host,
        port=port,
        path=address.path,
        version=version,
        sslContext=context if address.scheme == "https" else None,
        httpConnectionTimeout=timeout,
        connectionPoolTimeout=60,
    )


_RETRIEVALS = frozenset({"RetrieveProperties", "RetrievePropertiesEx", "ContinueRetrievePropertiesEx"})


def _unauthenticated(result: object) -> bool:
    """A retrieval answered without a session: the simulator (and some vCenter versions)
    return the objects with a NotAuthenticated fault per property instead of failing."""
    contents = getattr(result, "objects", result)
    if not isinstance(contents, list | tuple):
        return False
    return any(
        isinstance(getattr(missing, "fault", None), vim.fault.NotAuthenticated)
        for content in contents
        for missing in getattr(content, "missingSet", None) or ()
    )


def _repeatable(method: str) -> bool:
    return method.startswith(_REPEATABLE_PREFIXES)


class ResilientStub(StubAdapterBase):
    """A pyVmomi stub adapter that re-logs in and reconnects once per request (see module doc)."""

    def __init__(self, soap: SoapStubAdapter, login: Callable[[], None]) -> None:
        StubAdapterBase.__init__(self, version=soap.version)
        self.soap = soap
        self._login = login
        self._lock = threading.Lock()

    def DropConnections(self) -> None:
        self.soap.DropConnections()

    def InvokeMethod(self, mo, info, args):
        method = info.wsdlName
        relogged = reconnected = False
        while True:
            try:
                status, obj = self.soap.InvokeMethod(mo, info, args, self)
            except Exception as exc:
                if not is_connection_error(exc) or reconnected:
                    raise
                self.soap.DropConnections()
                if not (isinstance(exc, _NOT_DELIVERED) or _repeatable(method)):
                    raise Unreachable(
                        f"The connection to vCenter broke during {method}; vCenter may or may not have carried it out."
                    ) from exc
                reconnected = True
                continue
            if status == 200:
                session_lost = method in _RETRIEVALS and _unauthenticated(obj)
            else:
                session_lost = isinstance(obj, vim.fault.NotAuthenticated)
            if session_lost and not relogged:
                relogged = True
                with self._lock:
                    self._login()
                continue
            if status == 200:
                return obj
            raise obj
