"""A real LTI 1.3 / LTI Advantage platform for tests: the LMS (Moodle, Canvas) that launches
Nestlab's LTI tool, as far as the tool can see one.

The platform is a child process (``python -m tests.support.lti_platform <port> <state-dir>``,
stdlib ``http.server``, PyJWT and ``cryptography``) with:

- ``GET /jwks``: its public key set (RSA, with ``kid``); it also holds a second, "rogue" key
  for the ``bad_signature`` tamper;
- ``GET|POST /auth``: the OIDC third-party login's authorisation endpoint. It answers the launch
  prepared under the ``login_hint`` as a page with an auto-submitting form (``id_token``,
  ``state``) posted to the tool's ``redirect_uri``, usable without JavaScript too;
- ``POST /token``: OAuth 2 client credentials with a JWT client assertion signed by the tool's
  key (its JWKS pushed by the test or fetched from the tool's JWKS URL);
- ``GET /nrps/<context>/memberships``: Names and Role Provisioning Services 2.0, paged by a
  ``Link: <...>; rel="next"`` header when ``limit`` is given;
- ``/ags/<context>/lineitems[/<n>[/scores|/results]]``: Assignment and Grade Services 2.0;
- ``POST /deep-link-return``: the tool's ``LtiDeepLinkingResponse`` (form field ``JWT``);
- ``/control/...``: JSON calls of the test process (``LtiPlatform`` below), guarded by a token
  the server writes to ``<state-dir>/platform.json`` once it listens.

``LtiPlatform`` starts and stops the process and wraps the control calls; the ``lti_platform``
fixture (tests/conftest.py) gives each test one with nothing prepared.

pylti1p3 lowercases the ``rel="next"`` URLs it follows, so context ids and filters in service
URLs are matched without regard to case, as the real platforms' lowercase ids never notice.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from portal.simulator import free_port
from tests.support.processes import end_process

REPO_ROOT = Path(__file__).resolve().parents[2]

CLIENT_ID = "nestlab-tool"
DEPLOYMENT_ID = "deployment-1"

# IMS role URIs (LTI 1.3 core, A.2)
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ADMINISTRATOR = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
CONTENT_DEVELOPER = "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"

LTI_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = LTI_CLAIM + "message_type"
VERSION = LTI_CLAIM + "version"
DEPLOYMENT = LTI_CLAIM + "deployment_id"
TARGET_LINK_URI = LTI_CLAIM + "target_link_uri"
RESOURCE_LINK = LTI_CLAIM + "resource_link"
ROLES = LTI_CLAIM + "roles"
CONTEXT = LTI_CLAIM + "context"
CUSTOM = LTI_CLAIM + "custom"
TOOL_PLATFORM = LTI_CLAIM + "tool_platform"
LAUNCH_PRESENTATION = LTI_CLAIM + "launch_presentation"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
DL_CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"

SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_RESULT_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
AGS_SCOPES = [SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE]
SCOPES = frozenset([SCOPE_NRPS, *AGS_SCOPES])

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LINEITEM_CONTAINER = "application/vnd.ims.lis.v2.lineitemcontainer+json"
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"
SCORE = "application/vnd.ims.lis.v1.score+json"
RESULT_CONTAINER = "application/vnd.ims.lis.v2.resultcontainer+json"

TAMPERS = frozenset(["bad_signature", "expired", "wrong_audience", "unknown_deployment", "wrong_nonce", "wrong_issuer"])
ACTIVITY_PROGRESS = frozenset(["Initialized", "Started", "InProgress", "Submitted", "Completed"])
GRADING_PROGRESS = frozenset(["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"])
ROGUE_ISSUER = "https://rogue-lms.example"
TOKEN_LIFETIME = 3600

DEFAULT_USER = {
    "sub": "lms-user-1",
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "email": "ada@school.example",
}
# Two LMS users for tests to launch as (a learner and a teacher, by the roles a test gives them).
ADA = {
    "sub": "lms-ada",
    "name": "Ada Lovelace",
    "given_name": "Ada",
    "family_name": "Lovelace",
    "email": "ada@school.example",
}
GRACE = {
    "sub": "lms-grace",
    "name": "Grace Hopper",
    "given_name": "Grace",
    "family_name": "Hopper",
    "email": "grace@school.example",
}
DEFAULT_CONTEXT = {"id": "course-101", "label": "NET101", "title": "Networking 101"}
DEFAULT_RESOURCE_LINK = {"id": "resource-link-1", "title": "Lab 1"}


def _public_jwk(private_key: rsa.RSAPrivateKey, kid: str) -> dict:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


@dataclass(frozen=True)
class KeyPair:
    """An RSA key pair: ``private_pem`` (PKCS#8), ``public_pem``, ``jwks`` ({"keys": [...]}), ``kid``."""

    kid: str
    private_pem: str
    public_pem: str
    jwks: dict


def make_key_pair(kid: str = "nestlab-tool-key") -> KeyPair:
    """A fresh RSA key pair, e.g. for the tool under test (its JWKS goes to ``set_tool_jwks``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(kid=kid, private_pem=private_pem, public_pem=public_pem, jwks={"keys": [_public_jwk(key, kid)]})


class Refused(Exception):
    """A request the platform turns down: ``status``, an OAuth-style ``error`` code, ``reason``."""

    def __init__(self, status: int, error: str, reason: str, headers: dict | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers or {}


def _now() -> int:
    return int(time.time())


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


class Platform:
    """The platform's state and behaviour; the HTTP handler below only translates."""

    def __init__(self, base_url: str, client_id: str, deployment_ids: list[str]) -> None:
        self.issuer = base_url
        self.client_id = client_id
        self.deployment_ids = deployment_ids
        self.kid = f"nestlab-lms-{secrets.token_hex(4)}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.control_token = secrets.token_urlsafe(24)
        self.lock = threading.RLock()
        self.reset()

    # --- state -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything a test did; keys, issuer, client and deployments stay."""
        with self.lock:
            self.launches: dict[str, dict] = {}
            self.contexts: dict[str, dict] = {}
            self.members: dict[str, list[dict]] = {}
            self.launched_users: dict[str, set[str]] = {}
            self.tool_jwks: dict | None = None
            self.tool_jwks_url: str | None = None
            self.redirect_uris: list[str] | None = None
            self.page_size: int | None = None
            self.tokens: dict[str, dict] = {}
            self.used_jtis: set[str] = set()
            self.line_items: dict[str, list[dict]] = {}
            self.line_item_serial = 0
            self.scores: list[dict] = []
            self.deep_link_data: dict[str, dict] = {}
            self.deep_link_items: list[dict] = []
            self.last_launch: dict | None = None
            self.refusals: list[dict] = []

    def refuse(self, where: str, status: int, error: str, reason: str, headers: dict | None = None) -> Refused:
        with self.lock:
            self.refusals.append({"endpoint": where, "status": status, "error": error, "reason": reason})
        return Refused(status, error, reason, headers)

    def context_key(self, context_id: str) -> str | None:
        """The known context of that id (any case: see the module's docstring)."""
        if context_id in self.contexts:
            return context_id
        return next((known for known in self.contexts if _same(known, context_id)), None)

    def remember_context(self, context: dict) -> str:
        key = self.context_key(context["id"]) or context["id"]
        self.contexts[key] = {
            "id": key,
            "label": context.get("label", self.contexts.get(key, {}).get("label", "")),
            "title": context.get("title", self.contexts.get(key, {}).get("title", "")),
        }
        return key

    def url(self, path: str) -> str:
        return self.issuer + path

    def context_path(self, context_id: str) -> str:
        return urllib.parse.quote(context_id, safe="")

    # --- control ---------------------------------------------------------------------------

    def prepare_launch(self, spec: dict) -> dict:
        tamper = spec.get("tamper") or []
        tamper = [tamper] if isinstance(tamper, str) else list(tamper)
        unknown = set(tamper) - TAMPERS
        if unknown:
            raise Refused(400, "invalid_request", f"unknown tamper {sorted(unknown)}; known: {sorted(TAMPERS)}")
        message_type = spec.get("message_type") or RESOURCE_LINK_REQUEST
        if message_type not in (RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST):
            raise Refused(400, "invalid_request", f"unknown message type {message_type}")
        user = dict(spec.get("user") or DEFAULT_USER)
        if not user.get("sub"):
            raise Refused(400, "invalid_request", "the user needs a sub")
        if not spec.get("target_link_uri"):
            raise Refused(400, "invalid_request", "a launch needs the tool's target_link_uri")
        login_hint = spec.get("login_hint") or str(user["sub"])
        deployment_id = spec.get("deployment_id") or self.deployment_ids[0]
        context = spec.get("context", DEFAULT_CONTEXT)
        resource_link = spec.get("resource_link") or (
            dict(DEFAULT_RESOURCE_LINK) if message_type == RESOURCE_LINK_REQUEST else None
        )
        with self.lock:
            if context is not None:
                context = {**self.contexts.get(self.remember_context(context), {})}
                self.launched_users.setdefault(context["id"], set()).add(str(user["sub"]))
            line_item_url = None
            if spec.get("line_item") is not None:
                if context is None or resource_link is None:
                    raise Refused(400, "invalid_request", "a line item needs a context and a resource link")
                line_item_url = self.line_item_of_link(context["id"], resource_link["id"], spec["line_item"])["id"]
            launch = {
                "login_hint": login_hint,
                "lti_message_hint": secrets.token_urlsafe(12),
                "user": user,
                "roles": list(spec.get("roles") if spec.get("roles") is not None else [LEARNER]),
                "context": context,
                "message_type": message_type,
                "resource_link": resource_link,
                "target_link_uri": spec["target_link_uri"],
                "custom": spec.get("custom") or {},
                "services": spec.get("services", True),
                "line_item_url": line_item_url,
                "deployment_id": deployment_id,
                "deep_link_data": spec.get("deep_link_data") or f"dl-{secrets.token_hex(6)}",
                "tamper": tamper,
            }
            self.launches[login_hint] = launch
        return {
            "iss": self.issuer,
            "login_hint": login_hint,
            "target_link_uri": launch["target_link_uri"],
            "lti_message_hint": launch["lti_message_hint"],
            "client_id": self.client_id,
            "lti_deployment_id": deployment_id,
        }

    def set_members(self, body: dict) -> dict:
        context = body.get("context") or {"id": body["context_id"]}
        members = []
        for given in body.get("members", []):
            member = dict(given)
            if "user_id" not in member:
                member["user_id"] = member.pop("sub")
            member["user_id"] = str(member["user_id"])
            member.setdefault("status", "Active")
            member.setdefault("roles", [LEARNER])
            members.append(member)
        with self.lock:
            key = self.remember_context({"id": body["context_id"], **context})
            self.members[key] = members
        return {"context_id": key, "members": len(members)}

    def line_item_of_link(self, context_id: str, resource_link_id: str, fields: dict) -> dict:
        for item in self.line_items.get(context_id, []):
            if item.get("resourceLinkId") == resource_link_id:
                return item
        return self.create_line_item(
            context_id,
            {"scoreMaximum": 100, "label": "Lab", **fields, "resourceLinkId": resource_link_id},
        )

    def create_line_item(self, context_id: str, body: dict) -> dict:
        with self.lock:
            self.line_item_serial += 1
            number = self.line_item_serial
            item = {
                "id": self.url(f"/ags/{self.context_path(context_id)}/lineitems/{number}"),
                **{k: v for k, v in body.items() if k != "id"},
            }
            self.line_items.setdefault(context_id, []).append(item)
            return item

    # --- OIDC login: the launch ------------------------------------------------------------

    def authorize(self, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The form the browser posts to the tool: (redirect_uri, {"id_token", "state"})."""

        def bad(reason: str) -> Refused:
            return self.refuse("/auth", 400, "invalid_request", reason)

        if "openid" not in params.get("scope", "").split():
            raise bad("scope must include openid")
        if params.get("response_type") != "id_token":
            raise bad("response_type must be id_token")
        if params.get("response_mode") != "form_post":
            raise bad("response_mode must be form_post")
        if params.get("client_id") != self.client_id:
            raise self.refuse("/auth", 400, "unauthorized_client", f"unknown client_id {params.get('client_id')!r}")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri:
            raise bad("redirect_uri is missing")
        if self.redirect_uris is not None and redirect_uri not in self.redirect_uris:
            raise bad(f"redirect_uri {redirect_uri} is not registered")
        if not params.get("nonce"):
            raise bad("nonce is missing")
        with self.lock:
            launch = self.launches.get(params.get("login_hint", ""))
        if launch is None:
            raise self.refuse(
                "/auth", 400, "login_required", f"no launch prepared for login_hint {params.get('login_hint')!r}"
            )
        if params.get("lti_message_hint") != launch["lti_message_hint"]:
            raise bad("lti_message_hint does not match the launch")
        claims = self.launch_claims(launch, params["nonce"])
        tamper = launch["tamper"]
        key = self.rogue_key if "bad_signature" in tamper else self.key
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})
        fields = {"id_token": id_token}
        if params.get("state") is not None:
            fields["state"] = params["state"]
        with self.lock:
            self.last_launch = {
                "login_hint": launch["login_hint"],
                "redirect_uri": redirect_uri,
                "id_token": id_token,
                "state": params.get("state"),
                "nonce": params["nonce"],
                "claims": claims,
                "tamper": tamper,
            }
        return redirect_uri, fields

    def launch_claims(self, launch: dict, nonce: str) -> dict:
        tamper = launch["tamper"]
        now = _now()
        context = launch["context"]
        claims = {
            "iss": ROGUE_ISSUER if "wrong_issuer" in tamper else self.issuer,
            "aud": "another-tool" if "wrong_audience" in tamper else self.client_id,
            "azp": "another-tool" if "wrong_audience" in tamper else self.client_id,
            "sub": str(launch["user"]["sub"]),
            "iat": now - 1200 if "expired" in tamper else now,
            "exp": now - 600 if "expired" in tamper else now + 300,
            "nonce": f"not-{nonce}" if "wrong_nonce" in tamper else nonce,
            **{k: v for k, v in launch["user"].items() if k != "sub"},
            MESSAGE_TYPE: launch["message_type"],
            VERSION: "1.3.0",
            DEPLOYMENT: (
                f"deployment-unknown-{secrets.token_hex(3)}"
                if "unknown_deployment" in tamper
                else launch["deployment_id"]
            ),
            TARGET_LINK_URI: launch["target_link_uri"],
            ROLES: launch["roles"],
            CUSTOM: launch["custom"],
            TOOL_PLATFORM: {
                "guid": f"nestlab-test-lms-{urllib.parse.urlsplit(self.issuer).port}",
                "name": "Nestlab test LMS",
                "product_family_code": "nestlab-test-platform",
                "version": "1.0",
            },
            LAUNCH_PRESENTATION: {"document_target": "iframe", "return_url": self.url("/return"), "locale": "en"},
        }
        if launch["resource_link"] is not None:
            claims[RESOURCE_LINK] = launch["resource_link"]
        if context is not None:
            claims[CONTEXT] = {**context, "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]}
        services = launch["services"]
        if context is not None and services:
            wanted = {"nrps", "ags"} if services is True else set(services)
            path = self.context_path(context["id"])
            if "nrps" in wanted:
                claims[NRPS_CLAIM] = {
                    "context_memberships_url": self.url(f"/nrps/{path}/memberships"),
                    "service_versions": ["2.0"],
                }
            if "ags" in wanted:
                endpoint = {"scope": list(AGS_SCOPES), "lineitems": self.url(f"/ags/{path}/lineitems")}
                if launch["line_item_url"]:
                    endpoint["lineitem"] = launch["line_item_url"]
                claims[AGS_CLAIM] = endpoint
        if launch["message_type"] == DEEP_LINKING_REQUEST:
            data = launch["deep_link_data"]
            claims[DL_SETTINGS] = {
                "deep_link_return_url": self.url("/deep-link-return"),
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": True,
                "auto_create": True,
                "data": data,
            }
            with self.lock:
                self.deep_link_data[data] = {
                    "context": context,
                    "deployment_id": launch["deployment_id"],
                    "login_hint": launch["login_hint"],
                }
        return claims

    # --- the tool's own JWTs ---------------------------------------------------------------

    def tool_keys(self) -> list[dict]:
        with self.lock:
            jwks, url = self.tool_jwks, self.tool_jwks_url
        if jwks is None and url:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    jwks = json.load(response)
            except (OSError, ValueError) as error:
                raise Refused(401, "invalid_client", f"the tool's JWKS at {url} could not be read: {error}") from None
        if not jwks or not jwks.get("keys"):
            raise Refused(401, "invalid_client", "no key of the tool is known (set_tool_jwks / set_tool_jwks_url)")
        return jwks["keys"]

    def verify_tool_jwt(self, token: str, audiences: list[str]) -> dict:
        """The claims of a JWT the tool signed, or Refused(401, invalid_client)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise Refused(401, "invalid_client", f"not a JWT: {error}") from None
        if header.get("alg") != "RS256":
            raise Refused(401, "invalid_client", f"alg must be RS256, not {header.get('alg')}")
        keys = self.tool_keys()
        kid = header.get("kid")
        if kid:
            keys = [key for key in keys if key.get("kid") == kid]
            if not keys:
                raise Refused(401, "invalid_client", f"no key of the tool has kid {kid!r}")
        last_error: Exception | None = None
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    jwt.PyJWK(key, algorithm="RS256").key,
                    algorithms=["RS256"],
                    audience=audiences,
                    options={"require": ["iss", "aud", "exp"]},
                    leeway=5,
                )
            except jwt.InvalidTokenError as error:
                last_error = error
        raise Refused(401, "invalid_client", f"the JWT does not verify: {last_error}")

    def grant_token(self, form: dict[str, str]) -> dict:
        where = "/token"
        if form.get("grant_type") != "client_credentials":
            raise self.refuse(where, 400, "unsupported_grant_type", f"grant_type {form.get('grant_type')!r}")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise self.refuse(where, 400, "invalid_client", "client_assertion_type must be jwt-bearer")
        if not form.get("client_assertion"):
            raise self.refuse(where, 400, "invalid_client", "client_assertion is missing")
        try:
            claims = self.verify_tool_jwt(form["client_assertion"], [self.url("/token"), self.issuer])
        except Refused as refused:
            raise self.refuse(where, refused.status, refused.error, refused.reason) from None
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise self.refuse(where, 401, "invalid_client", "iss and sub must be the client id")
        jti = claims.get("jti")
        if not jti:
            raise self.refuse(where, 401, "invalid_client", "jti is missing")
        with self.lock:
            if jti in self.used_jtis:
                raise self.refuse(where, 401, "invalid_client", f"jti {jti} was used before")
            self.used_jtis.add(jti)
        asked = form.get("scope", "").split()
        granted = [scope for scope in asked if scope in SCOPES]
        if not granted:
            raise self.refuse(where, 400, "invalid_scope", f"none of the scopes {asked} is offered")
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = {"scopes": set(granted), "expires": time.time() + TOKEN_LIFETIME}
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "scope": " ".join(granted)}

    def authorize_service(self, where: str, authorization: str | None, scopes: set[str]) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise self.refuse(where, 401, "invalid_token", "no Bearer token", {"WWW-Authenticate": "Bearer"})
        with self.lock:
            grant = self.tokens.get(authorization[len("Bearer ") :].strip())
        if grant is None or grant["expires"] < time.time():
            raise self.refuse(
                where,
                401,
                "invalid_token",
                "unknown or expired token",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if not grant["scopes"] & scopes:
            raise self.refuse(where, 403, "insufficient_scope", f"the token has none of {sorted(scopes)}")

    # --- services --------------------------------------------------------------------------

    def page(self, items: list, query: dict[str, str], path: str) -> tuple[list, str | None]:
        """A page of ``items`` and the next page's URL, when ``limit`` is asked or a page size set."""
        if not query.get("limit") and not self.page_size:
            return items, None
        try:
            limit = max(1, int(query.get("limit") or self.page_size))
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            raise Refused(400, "invalid_request", "limit and page are whole numbers") from None
        start = (page - 1) * limit
        chunk = items[start : start + limit]
        if start + limit >= len(items):
            return chunk, None
        return chunk, self.url(path) + "?" + urllib.parse.urlencode({**query, "page": str(page + 1)})

    def memberships(self, context_id: str, query: dict[str, str], path: str) -> tuple[dict, str | None]:
        with self.lock:
            key = self.context_key(context_id)
            if key is None:
                raise self.refuse(path, 404, "not_found", f"no context {context_id}")
            members = list(self.members.get(key, []))
            context = dict(self.contexts[key])
        if query.get("role"):
            role = query["role"]
            members = [
                m for m in members if any(_same(r, role) or r.lower().endswith("#" + role.lower()) for r in m["roles"])
            ]
        chunk, next_url = self.page(members, query, path)
        return {"id": self.url(path), "context": context, "members": chunk}, next_url

    def find_line_item(self, context_id: str, number: str, where: str) -> tuple[str, dict]:
        with self.lock:
            key = self.context_key(context_id)
            for item in self.line_items.get(key, []) if key else []:
                if item["id"].rsplit("/", 1)[1] == number:
                    return key, item
        raise self.refuse(where, 404, "not_found", f"no line item {number} in context {context_id}")

    def list_line_items(self, context_id: str, query: dict[str, str], path: str) -> tuple[list, str | None]:
        with self.lock:
            key = self.context_key(context_id)
            if key is None:
                raise self.refuse(path, 404, "not_found", f"no context {context_id}")
            items = list(self.line_items.get(key, []))
        for param, field in (("resource_link_id", "resourceLinkId"), ("resource_id", "resourceId"), ("tag", "tag")):
            if query.get(param):
                items = [item for item in items if _same(str(item.get(field)), query[param])]
        return self.page(items, query, path)

    def add_line_item(self, context_id: str, body: dict, where: str) -> dict:
        with self.lock:
            key = self.context_key(context_id)
        if key is None:
            raise self.refuse(where, 404, "not_found", f"no context {context_id}")
        maximum = body.get("scoreMaximum")
        if not isinstance(maximum, int | float) or isinstance(maximum, bool) or maximum <= 0:
            raise self.refuse(where, 400, "invalid_request", "scoreMaximum must be a number above 0")
        if not body.get("label"):
            raise self.refuse(where, 400, "invalid_request", "label is missing")
        return self.create_line_item(key, body)

    def record_score(self, context_id: str, number: str, body: dict, where: str) -> dict:
        key, item = self.find_line_item(context_id, number, where)

        def bad(reason: str, status: int = 400) -> Refused:
            return self.refuse(where, status, "invalid_request", reason)

        if not body.get("userId"):
            raise bad("userId is missing")
        if body.get("activityProgress") not in ACTIVITY_PROGRESS:
            raise bad(f"activityProgress must be one of {sorted(ACTIVITY_PROGRESS)}")
        if body.get("gradingProgress") not in GRADING_PROGRESS:
            raise bad(f"gradingProgress must be one of {sorted(GRADING_PROGRESS)}")
        try:
            stamp = datetime.fromisoformat(str(body.get("timestamp")))
        except ValueError:
            raise bad("timestamp must be an ISO 8601 date and time") from None
        if stamp.tzinfo is None:
            raise bad("timestamp needs a time zone offset")
        if "scoreGiven" in body and body["scoreGiven"] is not None:
            given, maximum = body["scoreGiven"], body.get("scoreMaximum")
            if not isinstance(given, int | float) or given < 0:
                raise bad("scoreGiven must be a number of at least 0")
            if not isinstance(maximum, int | float) or maximum <= 0:
                raise bad("scoreGiven needs a scoreMaximum above 0")
        user_id = str(body["userId"])
        with self.lock:
            known = {m["user_id"] for m in self.members.get(key, [])} | self.launched_users.get(key, set())
            if user_id not in known:
                raise bad(f"user {user_id} is not in context {key}", 422)
            earlier = [s for s in self.scores if s["lineItem"] == item["id"] and s["userId"] == user_id]
            if earlier and stamp < datetime.fromisoformat(earlier[-1]["timestamp"]):
                raise bad("the timestamp is before that of the last score on record for this user")
            score = {**body, "userId": user_id, "lineItem": item["id"], "contextId": key}
            self.scores.append(score)
        return {"resultUrl": f"{item['id']}/results?user_id={urllib.parse.quote(user_id)}"}

    def results(self, context_id: str, number: str, query: dict[str, str], where: str) -> list[dict]:
        _, item = self.find_line_item(context_id, number, where)
        latest: dict[str, dict] = {}
        with self.lock:
            for score in self.scores:
                if score["lineItem"] == item["id"]:
                    latest[score["userId"]] = score
        results = []
        for user_id, score in latest.items():
            if query.get("user_id") and not _same(query["user_id"], user_id):
                continue
            result = {"id": f"{item['id']}/results/{user_id}", "scoreOf": item["id"], "userId": user_id}
            if score.get("scoreGiven") is not None:
                result["resultScore"] = score["scoreGiven"]
                result["resultMaximum"] = score["scoreMaximum"]
            if score.get("comment"):
                result["comment"] = score["comment"]
            results.append(result)
        return results

    # --- deep linking ----------------------------------------------------------------------

    def deep_link_return(self, form: dict[str, str]) -> list[dict]:
        where = "/deep-link-return"
        token = form.get("JWT")
        if not token:
            raise self.refuse(where, 400, "invalid_request", "the JWT form field is missing")
        try:
            claims = self.verify_tool_jwt(token, [self.issuer])
        except Refused as refused:
            raise self.refuse(where, 400, refused.error, refused.reason) from None
        if claims.get("iss") != self.client_id:
            raise self.refuse(where, 400, "invalid_client", "iss must be the client id")
        if claims.get(MESSAGE_TYPE) != DEEP_LINKING_RESPONSE:
            raise self.refuse(where, 400, "invalid_request", f"message_type must be {DEEP_LINKING_RESPONSE}")
        if claims.get(VERSION) != "1.3.0":
            raise self.refuse(where, 400, "invalid_request", "version must be 1.3.0")
        if claims.get(DEPLOYMENT) not in self.deployment_ids:
            raise self.refuse(where, 400, "invalid_request", f"unknown deployment_id {claims.get(DEPLOYMENT)!r}")
        with self.lock:
            request = self.deep_link_data.get(claims.get(DL_DATA))
        if request is None:
            raise self.refuse(where, 400, "invalid_request", "data is not that of a deep linking request")
        items = claims.get(DL_CONTENT_ITEMS) or []
        for item in items:
            if item.get("type") != "ltiResourceLink":
                raise self.refuse(where, 400, "invalid_request", f"content item type {item.get('type')!r} not accepted")
        with self.lock:
            for item in items:
                self.deep_link_items.append(
                    {
                        **item,
                        "context_id": (request["context"] or {}).get("id"),
                        "deployment_id": claims[DEPLOYMENT],
                        "data": claims.get(DL_DATA),
                    }
                )
        return items


def _auth_page(action: str, fields: dict[str, str]) -> str:
    inputs = "\n".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Launching the tool</title></head>
<body>
<form id="lti-launch" method="post" action="{html.escape(action)}">
{inputs}
<p>Launching the tool&hellip;</p>
<button type="submit">Continue</button>
</form>
<script>document.getElementById("lti-launch").submit();</script>
</body></html>
"""


def _message_page(title: str, text: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><p>{html.escape(text)}</p></body></html>\n"
    )


def _course_page(launch_url: str) -> str:
    """An LMS course page that shows a tool inside an iframe, as Moodle and Canvas do."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Networking 101</title></head>'
        f'<body><h1>Networking 101</h1><iframe id="tool" title="Nestlab" src="{html.escape(launch_url)}" '
        'style="width:1200px;height:800px"></iframe></body></html>\n'
    )


class Handler(BaseHTTPRequestHandler):
    platform: Platform  # set on the class by serve()
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    # --- plumbing --------------------------------------------------------------------------

    def send(self, status: int, body: str | bytes, content_type: str, headers: dict | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, status: int, value, content_type: str = "application/json", headers: dict | None = None):
        self.send(status, json.dumps(value), content_type, headers)

    def body(self) -> bytes:
        return self._body

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body().decode(), keep_blank_values=True))

    def json_body(self) -> dict:
        try:
            value = json.loads(self.body() or b"{}")
        except ValueError:
            raise Refused(400, "invalid_request", "the body is not JSON") from None
        if not isinstance(value, dict):
            raise Refused(400, "invalid_request", "the body is not a JSON object")
        return value

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        # The whole body first, even of a request refused before it is looked at: the
        # connection is kept alive (pylti1p3 reuses one), and a body left unread would be
        # taken for the next request.
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(part) for part in split.path.strip("/").split("/")]
        query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        try:
            self.route(method, split.path, parts, query)
        except Refused as refused:
            if parts[0] in ("auth", "deep-link-return"):
                self.send(refused.status, _message_page("Refused", refused.reason), "text/html; charset=utf-8")
            else:
                body = {"error": refused.error, "error_description": refused.reason}
                self.send_json(refused.status, body, headers=refused.headers)
        except Exception as error:  # a test server answers 500 (and logs the traceback)
            self.send_json(500, {"error": "server_error", "error_description": repr(error)})
            raise

    def route(self, method: str, path: str, parts: list[str], query: dict[str, str]) -> None:
        platform = self.platform
        head = parts[0]
        if head == "jwks" and method == "GET":
            self.send_json(200, {"keys": [_public_jwk(platform.key, platform.kid)]})
        elif head == "auth" and method in ("GET", "POST"):
            params = query if method == "GET" else {**query, **self.form()}
            action, fields = platform.authorize(params)
            self.send(200, _auth_page(action, fields), "text/html; charset=utf-8")
        elif head == "token" and method == "POST":
            self.send_json(200, platform.grant_token(self.form()))
        elif head == "nrps" and len(parts) == 3 and parts[2] == "memberships" and method == "GET":
            platform.authorize_service(path, self.headers.get("Authorization"), {SCOPE_NRPS})
            container, next_url = platform.memberships(parts[1], query, path)
            headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
            self.send_json(200, container, MEMBERSHIP_CONTAINER, headers)
        elif head == "ags" and len(parts) >= 3 and parts[2] == "lineitems":
            self.route_ags(method, path, parts, query)
        elif head == "deep-link-return" and method == "POST":
            items = platform.deep_link_return(self.form())
            titles = ", ".join(str(item.get("title") or item.get("url") or "untitled") for item in items)
            text = f"Link added: {titles}" if items else "No link added"
            self.send(200, _message_page("Deep linking", text), "text/html; charset=utf-8")
        elif head == "course" and method == "GET":
            # The page a learner opens in the LMS: the tool's login initiation in an iframe.
            self.send(200, _course_page(query.get("launch", "")), "text/html; charset=utf-8")
        elif head == "control":
            if not secrets.compare_digest(self.headers.get("X-Control-Token", ""), platform.control_token):
                raise Refused(403, "forbidden", "the control API needs the control token")
            self.route_control(method, parts[1:])
        else:
            raise Refused(404, "not_found", f"{method} {path} is not a route of the test platform")

    def route_ags(self, method: str, path: str, parts: list[str], query: dict[str, str]) -> None:
        platform = self.platform
        context_id = parts[1]
        read = {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY}
        auth = self.headers.get("Authorization")
        if len(parts) == 3 and method == "GET":
            platform.authorize_service(path, auth, read)
            items, next_url = platform.list_line_items(context_id, query, path)
            headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
            self.send_json(200, items, LINEITEM_CONTAINER, headers)
        elif len(parts) == 3 and method == "POST":
            platform.authorize_service(path, auth, {SCOPE_LINEITEM})
            item = platform.add_line_item(context_id, self.json_body(), path)
            self.send_json(201, item, LINEITEM)
        elif len(parts) == 4 and method == "GET":
            platform.authorize_service(path, auth, read)
            self.send_json(200, platform.find_line_item(context_id, parts[3], path)[1], LINEITEM)
        elif len(parts) == 4 and method == "PUT":
            platform.authorize_service(path, auth, {SCOPE_LINEITEM})
            _, item = platform.find_line_item(context_id, parts[3], path)
            with platform.lock:
                item.update({k: v for k, v in self.json_body().items() if k != "id"})
            self.send_json(200, item, LINEITEM)
        elif len(parts) == 4 and method == "DELETE":
            platform.authorize_service(path, auth, {SCOPE_LINEITEM})
            key, item = platform.find_line_item(context_id, parts[3], path)
            with platform.lock:
                platform.line_items[key].remove(item)
            self.send(204, b"", "text/plain")
        elif len(parts) == 5 and parts[4] == "scores" and method == "POST":
            platform.authorize_service(path, auth, {SCOPE_SCORE})
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type not in (SCORE, "application/json"):
                raise platform.refuse(path, 415, "invalid_request", f"a score is {SCORE}, not {content_type!r}")
            self.send_json(200, platform.record_score(context_id, parts[3], self.json_body(), path))
        elif len(parts) == 5 and parts[4] == "results" and method == "GET":
            platform.authorize_service(path, auth, {SCOPE_RESULT_READONLY})
            self.send_json(200, platform.results(context_id, parts[3], query, path), RESULT_CONTAINER)
        else:
            raise Refused(404, "not_found", f"{method} {path} is not a route of the test platform")

    def route_control(self, method: str, parts: list[str]) -> None:
        platform = self.platform
        name = parts[0] if parts else ""
        if method == "POST":
            body = self.json_body()
            if name == "reset":
                platform.reset()
                answer = {}
            elif name == "launches":
                answer = platform.prepare_launch(body)
            elif name == "members":
                answer = platform.set_members(body)
            elif name == "tool-jwks":
                with platform.lock:
                    platform.tool_jwks, platform.tool_jwks_url = body.get("jwks"), body.get("url")
                answer = {}
            elif name == "redirect-uris":
                with platform.lock:
                    platform.redirect_uris = body.get("redirect_uris")
                answer = {}
            elif name == "page-size":
                with platform.lock:
                    platform.page_size = body.get("page_size")
                answer = {}
            elif name == "revoke-tokens":
                with platform.lock:
                    platform.tokens.clear()
                answer = {}
            else:
                raise Refused(404, "not_found", f"no control call {name}")
            self.send_json(200, answer)
            return
        with platform.lock:
            views = {
                "scores": lambda: platform.scores,
                "line-items": lambda: [
                    {**item, "contextId": context_id}
                    for context_id, items in platform.line_items.items()
                    for item in items
                ],
                "deep-link-items": lambda: platform.deep_link_items,
                "last-launch": lambda: platform.last_launch,
                "refusals": lambda: platform.refusals,
                "launches": lambda: platform.launches,
            }
            if name not in views:
                raise Refused(404, "not_found", f"no control call {name}")
            answer = json.loads(json.dumps(views[name]()))
        self.send_json(200, answer)


def serve(port: int, state_dir: Path, client_id: str, deployment_ids: list[str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    platform = Platform(f"http://127.0.0.1:{port}", client_id, deployment_ids)
    Handler.platform = platform
    info = {
        "port": port,
        "issuer": platform.issuer,
        "client_id": client_id,
        "deployment_ids": deployment_ids,
        "kid": platform.kid,
        "control_token": platform.control_token,
        "pid": os.getpid(),
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    partial = state_dir / "platform.json.partial"
    partial.write_text(json.dumps(info))
    partial.chmod(0o600)
    partial.replace(state_dir / "platform.json")
    print(f"LTI test platform at {platform.issuer}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An LTI 1.3 platform (LMS) for tests")
    parser.add_argument("port", type=int, help="0 for any free port (written to <state-dir>/platform.json)")
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--client-id", default=CLIENT_ID)
    parser.add_argument("--deployment-id", action="append", dest="deployment_ids")
    args = parser.parse_args(argv)
    serve(args.port, args.state_dir, args.client_id, args.deployment_ids or [DEPLOYMENT_ID])


# --- the test process's side -----------------------------------------------------------------


class _FormParser(HTMLParser):
    """The first form of a page: its action and its inputs' values."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.in_form = False
        self.done = False

    def handle_starttag(self, tag: str, attrs) -> None:
        attributes = dict(attrs)
        if tag == "form" and not self.done:
            self.in_form = True
            self.action = attributes.get("action")
        elif tag == "input" and self.in_form and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.in_form:
            self.in_form = False
            self.done = True


class LtiPlatform:
    """The test platform process, for the test process.

    ``issuer``, ``client_id``, ``deployment_id`` (``deployment_ids``), ``auth_login_url``,
    ``auth_token_url``, ``key_set_url``, ``deep_link_return_url``: what the tool is registered with.
    ``target_link_uri``: the tool's launch URL, the default of ``prepare_launch``.
    """

    def __init__(
        self,
        *,
        client_id: str = CLIENT_ID,
        deployment_ids: list[str] | tuple[str, ...] = (DEPLOYMENT_ID,),
        target_link_uri: str | None = None,
    ) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = client_id
        self.deployment_ids = list(deployment_ids)
        self.deployment_id = self.deployment_ids[0]
        self.auth_login_url = self.issuer + "/auth"
        self.auth_token_url = self.issuer + "/token"
        self.key_set_url = self.issuer + "/jwks"
        self.deep_link_return_url = self.issuer + "/deep-link-return"
        self.target_link_uri = target_link_uri
        self.state_dir = Path(tempfile.mkdtemp(prefix="nestlab-lti-platform-"))
        self.process: subprocess.Popen | None = None
        self._control_token = ""
        self._log = None

    # --- process ---------------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> LtiPlatform:
        command = [sys.executable, "-m", "tests.support.lti_platform", str(self.port), str(self.state_dir)]
        command += ["--client-id", self.client_id]
        for deployment_id in self.deployment_ids:
            command += ["--deployment-id", deployment_id]
        self._log = (self.state_dir / "server.log").open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        info_file = self.state_dir / "platform.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the LTI test platform stopped:\n{self.log()[-2000:]}")
            if info_file.exists():
                self._control_token = json.loads(info_file.read_text())["control_token"]
                with contextlib.suppress(OSError), urllib.request.urlopen(self.key_set_url, timeout=2):
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the LTI test platform did not answer within {timeout} s")

    def stop(self) -> None:
        end_process(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        """What the server printed (its request log and any traceback)."""
        path = self.state_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _control(self, method: str, name: str, body: dict | None = None):
        data = json.dumps(body or {}).encode() if method == "POST" else None
        request = urllib.request.Request(
            f"{self.issuer}/control/{name}",
            data=data,
            method=method,
            headers={"X-Control-Token": self._control_token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise ValueError(f"{name}: {error.code} {error.read().decode(errors='replace')}") from None

    # --- preparing ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget launches, members, tool keys, tokens, line items, scores, deep-link items."""
        self._control("POST", "reset")

    def prepare_launch(
        self,
        login_hint: str | None = None,
        *,
        user: dict | None = None,
        roles: list[str] | tuple[str, ...] = (LEARNER,),
        context: dict | None = DEFAULT_CONTEXT,
        message_type: str = RESOURCE_LINK_REQUEST,
        resource_link: dict | None = None,
        target_link_uri: str | None = None,
        custom: dict | None = None,
        services: bool | list[str] = True,
        line_item: dict | None = None,
        deployment_id: str | None = None,
        deep_link_data: str | None = None,
        tamper: str | list[str] | None = None,
    ) -> dict[str, str]:
        """Prepare the launch the platform answers ``/auth`` with for ``login_hint``, and return
        the third-party login initiation's parameters (iss, login_hint, target_link_uri,
        lti_message_hint, client_id, lti_deployment_id) for the tool's login URL.

        ``user``: sub and the name/email claims to send (default Ada Lovelace, sub lms-user-1;
        the login_hint defaults to the sub). ``context=None`` launches outside a course (then
        no services). ``resource_link`` defaults to {"id": "resource-link-1", "title": "Lab 1"}
        for a resource link request. ``services``: True, False or some of ["nrps", "ags"].
        ``line_item``: fields of the line item bound to the resource link (made if it has
        none; its URL goes in the AGS claim). ``tamper``: one or more of ``TAMPERS``.
        """
        return self._control(
            "POST",
            "launches",
            {
                "login_hint": login_hint,
                "user": user,
                "roles": list(roles),
                "context": context,
                "message_type": message_type,
                "resource_link": resource_link,
                "target_link_uri": target_link_uri or self.target_link_uri,
                "custom": custom,
                "services": services,
                "line_item": line_item,
                "deployment_id": deployment_id,
                "deep_link_data": deep_link_data,
                "tamper": tamper,
            },
        )

    def set_members(self, context_id: str, members: list[dict], *, context: dict | None = None) -> None:
        """The course's roster for NRPS: dicts of user_id (or sub), name, given_name,
        family_name, email, roles (default [LEARNER]), status (default "Active")."""
        self._control("POST", "members", {"context_id": context_id, "members": members, "context": context})

    def set_tool_jwks(self, jwks: dict) -> None:
        """The tool's public keys ({"keys": [...]}) for its client assertions and deep-link responses."""
        self._control("POST", "tool-jwks", {"jwks": jwks})

    def set_tool_jwks_url(self, url: str) -> None:
        """The tool's JWKS URL, fetched at each use (as platforms registered with a URL do)."""
        self._control("POST", "tool-jwks", {"url": url})

    def set_redirect_uris(self, redirect_uris: list[str] | None) -> None:
        """Only these redirect_uri are accepted at /auth (None: any, the default)."""
        self._control("POST", "redirect-uris", {"redirect_uris": redirect_uris})

    def set_page_size(self, page_size: int | None) -> None:
        """Page NRPS members and AGS line items by this many even when the tool asks no
        ``limit``, as Canvas does (None: one page unless asked, the default)."""
        self._control("POST", "page-size", {"page_size": page_size})

    def revoke_tokens(self) -> None:
        """Every access token granted so far stops working (the next call gets 401)."""
        self._control("POST", "revoke-tokens")

    # --- reading ---------------------------------------------------------------------------

    def scores(self) -> list[dict]:
        """Every score the tool posted, oldest first: its JSON plus ``lineItem`` and ``contextId``."""
        return self._control("GET", "scores")

    def line_items(self) -> list[dict]:
        """Every line item, with ``contextId``."""
        return self._control("GET", "line-items")

    def deep_link_items(self) -> list[dict]:
        """Every content item the tool returned by deep linking, with ``context_id``,
        ``deployment_id`` and ``data``."""
        return self._control("GET", "deep-link-items")

    def last_launch(self) -> dict | None:
        """The last id_token issued at /auth: login_hint, redirect_uri, id_token, state, nonce,
        claims, tamper (to replay it, post id_token and state again)."""
        return self._control("GET", "last-launch")

    def refusals(self) -> list[dict]:
        """Every request the platform refused and why (endpoint, status, error, reason)."""
        return self._control("GET", "refusals")

    def public_jwks(self) -> dict:
        with urllib.request.urlopen(self.key_set_url, timeout=10) as response:
            return json.load(response)

    # --- the browser's part ----------------------------------------------------------------

    def course_page_url(self, tool_login_url: str, params: dict[str, str]) -> str:
        """The LMS's course page showing the tool in an iframe, started at its login initiation
        with ``params`` (what ``prepare_launch`` returned)."""
        launch = f"{tool_login_url}?{urllib.parse.urlencode(params)}"
        return f"{self.issuer}/course?{urllib.parse.urlencode({'launch': launch})}"

    def id_token_form(self, auth_url: str) -> tuple[str, dict[str, str]]:
        """Follow the tool's redirect to /auth as a browser would and return the form it would
        post to the tool: (action, {"id_token": ..., "state": ...})."""
        if not auth_url.startswith(self.auth_login_url):
            raise ValueError(f"{auth_url} is not this platform's /auth")
        try:
            with urllib.request.urlopen(auth_url, timeout=10) as response:
                page = response.read().decode()
        except urllib.error.HTTPError as error:
            raise AssertionError(f"/auth refused: {error.code} {error.read().decode(errors='replace')}") from None
        parser = _FormParser()
        parser.feed(page)
        if parser.action is None:
            raise AssertionError(f"/auth answered no form:\n{page}")
        return parser.action, parser.fields


if __name__ == "__main__":
    main()
