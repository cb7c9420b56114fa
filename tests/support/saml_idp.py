"""A real SAML 2.0 identity provider for tests: pysaml2's IdP (``saml2.server.Server``) behind a
small HTTP server, started on a free port by ``SamlIdp`` like the OIDC provider
(tests/support/oidc_provider.py).

It makes its own signing key and self-signed certificate at start, serves its metadata, and
answers an AuthnRequest (HTTP-Redirect binding) with a signed assertion (pysaml2 signs with
Debian's ``xmlsec1``) about the person the test chose, posted back to the service provider by an
auto-submitting form (HTTP-POST binding), as Shibboleth or ADFS would. The service provider it
trusts is the one whose metadata the test hands it (``trust_service_provider``).

    python -m tests.support.saml_idp PORT WORKDIR
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from portal.simulator import free_port
from tests.support.processes import REPO_ROOT, end_process

# The attributes a Shibboleth IdP releases, by the local names pysaml2 turns into their OIDs
# (urn:oid:...) on the wire; Nestlab's provider setting below maps those OIDs.
ATTRIBUTES = {
    "uid": "urn:oid:0.9.2342.19200300.100.1.1",
    "email": "urn:oid:0.9.2342.19200300.100.1.3",
    "first_name": "urn:oid:2.5.4.42",
    "last_name": "urn:oid:2.5.4.4",
}
ROLE_ATTRIBUTE = "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"  # isMemberOf
ROLES = {"admin": "nestlab-admins", "instructor": "nestlab-instructors", "student": "nestlab-students"}


class SamlIdp:
    """The IdP process: ``url``, ``metadata_url``; ``sign_in_as`` chooses who its next
    assertion is about; ``provider_setting`` is its entry for NESTLAB_SAML_PROVIDERS."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metadata_url = f"{self.url}/metadata"
        self.work = Path(tempfile.mkdtemp(prefix="nestlab-saml-idp-"))
        self.process: subprocess.Popen | None = None

    def sign_in_as(
        self,
        uid: str,
        *,
        mail: str = "",
        given_name: str = "",
        surname: str = "",
        groups: Sequence[str] = (),
        sha1: bool = False,
        sign_assertion: bool = True,
    ) -> None:
        """The person the IdP's next assertion is about (it asks no password). The response is
        signed, and the assertion in it too unless ``sign_assertion`` is false (Shibboleth's
        default); ``sha1`` signs the deprecated way, as old IdPs still do."""
        attributes = {"uid": [uid], "mail": [mail], "givenName": [given_name], "sn": [surname]}
        attributes = {name: values for name, values in attributes.items() if any(values)}
        attributes["isMemberOf"] = list(groups)
        (self.work / "person.json").write_text(
            json.dumps({"uid": uid, "attributes": attributes, "sha1": sha1, "sign_assertion": sign_assertion})
        )

    @property
    def certificate(self) -> str:
        """The IdP's signing certificate, base64 DER as SAML metadata carries it."""
        pem = (self.work / "idp.crt").read_text()
        return "".join(line for line in pem.splitlines() if not line.startswith("-----"))

    def trust_service_provider(self, metadata: bytes) -> None:
        """The SP the IdP answers: its metadata as Nestlab serves it (the IdP re-reads it on
        every request, so a test may hand it over after the IdP started)."""
        (self.work / "sp-metadata.xml").write_bytes(metadata)

    def start(self) -> SamlIdp:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.saml_idp", str(self.port), str(self.work)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.metadata_url, timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    output = self.process.stdout.read().decode()[-2000:]
                    raise RuntimeError(f"the SAML IdP stopped: {output}") from None
                time.sleep(0.1)
        raise RuntimeError("the SAML IdP did not answer within 20 s")

    def provider_setting(self, **extra) -> dict:
        return {
            "id": "school-saml",
            "name": "School account (SAML)",
            "entity_id": self.metadata_url,
            "metadata_url": self.metadata_url,
            "attributes": ATTRIBUTES,
            "role_attribute": ROLE_ATTRIBUTE,
            "roles": ROLES,
            **extra,
        }

    def stop(self) -> None:
        end_process(self.process)
        shutil.rmtree(self.work, ignore_errors=True)


# The IdP process itself, below: pysaml2 is imported here only, in the child.


def _make_key_and_certificate(work: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Nestlab test IdP")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (work / "idp.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (work / "idp.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _server(base: str, work: Path):
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.saml import NAME_FORMAT_URI
    from saml2.server import Server

    sp_metadata = work / "sp-metadata.xml"
    config = IdPConfig()
    config.load(
        {
            "entityid": f"{base}/metadata",
            "service": {
                "idp": {
                    "endpoints": {"single_sign_on_service": [(f"{base}/sso/redirect", BINDING_HTTP_REDIRECT)]},
                    "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
                    "want_authn_requests_signed": False,
                }
            },
            "key_file": str(work / "idp.key"),
            "cert_file": str(work / "idp.crt"),
            "xmlsec_binary": shutil.which("xmlsec1") or "/usr/bin/xmlsec1",
            "metadata": {"local": [str(sp_metadata)]} if sp_metadata.exists() else {},
        }
    )
    return Server(config=config)


def _handler(base: str, work: Path):
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.metadata import create_metadata_string
    from saml2.saml import AUTHN_PASSWORD, NAMEID_FORMAT_PERSISTENT, NameID
    from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/metadata":
                server = _server(base, work)
                self._answer(200, create_metadata_string(None, config=server.config), "application/samlmetadata+xml")
            elif parts.path == "/sso/redirect":
                try:
                    self._single_sign_on(parse_qs(parts.query))
                except Exception:  # noqa: BLE001 - the test sees why, not a dropped connection
                    self._answer(500, traceback.format_exc(), "text/plain")
            else:
                self._answer(404, b"not here", "text/plain")

        def _single_sign_on(self, query: dict[str, list[str]]) -> None:
            server = _server(base, work)
            request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
            person = json.loads((work / "person.json").read_text())
            answer = server.response_args(request.message, [BINDING_HTTP_POST])
            response = server.create_authn_response(
                person["attributes"],
                userid=person["uid"],
                name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=person["uid"]),
                authn={"class_ref": AUTHN_PASSWORD, "authn_auth": base},
                sign_assertion=person["sign_assertion"],
                sign_response=True,
                # pysaml2 signs with SHA-1 unless told; Nestlab refuses SHA-1 signatures.
                sign_alg=SIG_RSA_SHA1 if person["sha1"] else SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA1 if person["sha1"] else DIGEST_SHA256,
                **answer,
            )
            form = server.apply_binding(
                BINDING_HTTP_POST,
                str(response),
                answer["destination"],
                query.get("RelayState", [""])[0],
                response=True,
            )
            self._answer(200, form["data"].encode(), "text/html")

        def _answer(self, status: int, body: bytes | str, content_type: str) -> None:
            body = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            sys.stdout.write(f"saml-idp: {format % args}\n")

    return Handler


def main(port: int, work: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    _make_key_and_certificate(work)
    ThreadingHTTPServer(("127.0.0.1", port), _handler(base, work)).serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
