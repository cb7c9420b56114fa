"""The LTI 1.3 test platform (tests/support/lti_platform.py) does what an LMS does, as the tool's
library (pylti1p3, driven here through its Django adapter on bare requests, with no database)
and plain HTTP see it."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.test import RequestFactory
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.tool_config import ToolConfDict

from tests.support import lti_platform as lti

LAUNCH_URL = "http://testserver/lti/launch/"
LOGIN_URL = "http://testserver/lti/login/"


@pytest.fixture(scope="module")
def tool_keys() -> lti.KeyPair:
    return lti.make_key_pair()


@pytest.fixture
def platform(lti_platform):
    lti_platform.target_link_uri = LAUNCH_URL
    return lti_platform


@pytest.fixture
def tool(platform, tool_keys):
    """pylti1p3 registered with the platform, its public key given to the platform."""
    conf = ToolConfDict(
        {
            platform.issuer: [
                {
                    "default": True,
                    "client_id": platform.client_id,
                    "auth_login_url": platform.auth_login_url,
                    "auth_token_url": platform.auth_token_url,
                    "key_set_url": platform.key_set_url,
                    "deployment_ids": [platform.deployment_id],
                }
            ]
        }
    )
    conf.set_private_key(platform.issuer, tool_keys.private_pem, client_id=platform.client_id)
    conf.set_public_key(platform.issuer, tool_keys.public_pem, client_id=platform.client_id)
    # pylti1p3 names its key by its thumbprint; the same key under tool_keys.kid signs this
    # module's own assertions
    keys = conf.get_jwks(platform.issuer, platform.client_id)["keys"] + tool_keys.jwks["keys"]
    platform.set_tool_jwks({"keys": keys})
    return conf


def launch(platform, conf, **prepare) -> DjangoMessageLaunch:
    """The whole OIDC third-party login as a browser carries it between platform and tool."""
    factory = RequestFactory()
    session: dict = {}
    login = factory.get(LOGIN_URL, platform.prepare_launch(**prepare))
    login.session = session
    redirect = DjangoOIDCLogin(login, conf).redirect(LAUNCH_URL)
    assert redirect.status_code == 302
    action, fields = platform.id_token_form(redirect["Location"])
    assert action == LAUNCH_URL
    post = factory.post(action, fields)
    post.session = session
    post.COOKIES = {name: morsel.value for name, morsel in redirect.cookies.items()}
    message = DjangoMessageLaunch(post, conf)
    message.get_launch_data()  # validates
    return message


def auth_query(platform, params: dict, **overrides) -> dict:
    return {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": platform.client_id,
        "redirect_uri": LAUNCH_URL,
        "state": "state-1",
        "nonce": "nonce-1",
        "login_hint": params["login_hint"],
        "lti_message_hint": params["lti_message_hint"],
        **overrides,
    }


def id_token(platform, **prepare) -> str:
    params = platform.prepare_launch(**prepare)
    url = requests.Request("GET", platform.auth_login_url, params=auth_query(platform, params)).prepare().url
    return platform.id_token_form(url)[1]["id_token"]


def client_assertion(platform, keys: lti.KeyPair, **claims) -> str:
    now = int(time.time())
    body = {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": platform.auth_token_url,
        "iat": now,
        "exp": now + 60,
        "jti": uuid.uuid4().hex,
        **claims,
    }
    return jwt.encode(body, keys.private_pem, algorithm="RS256", headers={"kid": keys.kid})


def ask_token(platform, assertion: str, scope: str = lti.SCOPE_NRPS) -> requests.Response:
    return requests.post(
        platform.auth_token_url,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": lti.CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": scope,
        },
        timeout=10,
    )


# --- launches -------------------------------------------------------------------------------


def test_the_published_key_verifies_the_launch_it_signs(platform):
    params = platform.prepare_launch(
        roles=[lti.INSTRUCTOR], custom={"lab": "esxi-101"}, line_item={"label": "Lab 1", "scoreMaximum": 10}
    )
    assert params == {
        "iss": platform.issuer,
        "login_hint": "lms-user-1",
        "target_link_uri": LAUNCH_URL,
        "lti_message_hint": params["lti_message_hint"],
        "client_id": "nestlab-tool",
        "lti_deployment_id": "deployment-1",
    }
    url = requests.Request("GET", platform.auth_login_url, params=auth_query(platform, params)).prepare().url
    page = requests.get(url, timeout=10)
    assert '<form id="lti-launch" method="post" action="http://testserver/lti/launch/">' in page.text
    assert '<button type="submit">' in page.text and ".submit()" in page.text
    action, fields = platform.id_token_form(url)
    assert action == LAUNCH_URL and fields["state"] == "state-1"

    token = fields["id_token"]
    jwks = requests.get(platform.key_set_url, timeout=10).json()
    (key,) = jwks["keys"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=platform.client_id)
    assert claims["iss"] == platform.issuer and claims["nonce"] == "nonce-1" and claims["sub"] == "lms-user-1"
    assert claims["email"] == "ada@school.example"
    assert claims[lti.MESSAGE_TYPE] == lti.RESOURCE_LINK_REQUEST and claims[lti.VERSION] == "1.3.0"
    assert claims[lti.ROLES] == [lti.INSTRUCTOR]
    assert claims[lti.CUSTOM] == {"lab": "esxi-101"}
    assert claims[lti.CONTEXT]["id"] == "course-101"
    assert claims[lti.NRPS_CLAIM]["context_memberships_url"] == f"{platform.issuer}/nrps/course-101/memberships"
    assert claims[lti.AGS_CLAIM]["lineitem"] == platform.line_items()[0]["id"]
    assert platform.last_launch()["id_token"] == token


def test_pylti1p3_accepts_the_launch(platform, tool):
    message = launch(platform, tool, roles=[lti.LEARNER], resource_link={"id": "rl-7", "title": "Lab 7"})
    data = message.get_launch_data()
    assert message.is_resource_launch() and message.check_student_access()
    assert data[lti.RESOURCE_LINK] == {"id": "rl-7", "title": "Lab 7"}
    assert message.has_nrps() and message.has_ags()
    last = platform.last_launch()
    assert last["claims"]["nonce"] == data["nonce"] and last["state"]


def test_services_can_be_left_out(platform, tool):
    message = launch(platform, tool, services=False)
    assert not message.has_nrps() and not message.has_ags()
    message = launch(platform, tool, services=["nrps"])
    assert message.has_nrps() and not message.has_ags()


@pytest.mark.parametrize(
    ("tamper", "error", "refusal"),
    [
        ("bad_signature", LtiException, "Signature verification failed"),
        ("expired", LtiException, "Signature has expired"),
        # ToolConfDict raises a bare Exception for a registration it has not (a configuration
        # reading the database answers None, and pylti1p3 LtiException "Registration not found")
        ("wrong_audience", Exception, "client_id=another-tool] not found"),
        ("unknown_deployment", LtiException, "Unable to find deployment"),
        ("wrong_nonce", LtiException, "Invalid Nonce"),
        ("wrong_issuer", Exception, "iss https://rogue-lms.example not found"),
    ],
)
def test_a_tampered_launch_is_refused_by_pylti1p3(platform, tool, tamper, error, refusal):
    with pytest.raises(error, match=refusal):
        launch(platform, tool, tamper=tamper)
    claims = platform.last_launch()["claims"]
    assert platform.last_launch()["tamper"] == [tamper]
    checks = {
        "bad_signature": lambda: True,
        "expired": lambda: claims["exp"] < time.time(),
        "wrong_audience": lambda: claims["aud"] != platform.client_id,
        "unknown_deployment": lambda: claims[lti.DEPLOYMENT] not in platform.deployment_ids,
        "wrong_nonce": lambda: claims["nonce"] != platform.last_launch()["nonce"],
        "wrong_issuer": lambda: claims["iss"] != platform.issuer,
    }
    assert checks[tamper]()


def test_a_bad_signature_uses_the_real_kid_and_fails_with_the_published_key(platform):
    token = id_token(platform, tamper="bad_signature")
    (key,) = platform.public_jwks()["keys"]
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=platform.client_id)


def test_auth_refuses_what_a_platform_refuses(platform):
    params = platform.prepare_launch()
    for overrides in ({"login_hint": "nobody"}, {"client_id": "other"}, {"response_mode": "query"}, {"nonce": ""}):
        answer = requests.get(platform.auth_login_url, params=auth_query(platform, params, **overrides), timeout=10)
        assert answer.status_code == 400, overrides
    assert len(platform.refusals()) == 4
    platform.set_redirect_uris(["http://testserver/elsewhere/"])
    answer = requests.get(platform.auth_login_url, params=auth_query(platform, params), timeout=10)
    assert answer.status_code == 400 and "not registered" in answer.text


# --- the token endpoint ---------------------------------------------------------------------


def test_token_refuses_an_assertion_of_an_unknown_key_and_grants_a_good_one(platform, tool_keys):
    platform.set_tool_jwks(tool_keys.jwks)
    stranger = lti.make_key_pair(kid=tool_keys.kid)
    refused = ask_token(platform, client_assertion(platform, stranger))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"

    granted = ask_token(platform, client_assertion(platform, tool_keys), f"{lti.SCOPE_NRPS} {lti.SCOPE_SCORE}")
    assert granted.status_code == 200
    assert granted.json()["token_type"] == "Bearer"
    assert set(granted.json()["scope"].split()) == {lti.SCOPE_NRPS, lti.SCOPE_SCORE}
    # Moodle's audience, the issuer, too
    assert ask_token(platform, client_assertion(platform, tool_keys, aud=platform.issuer)).status_code == 200


@pytest.mark.parametrize(
    "claims",
    [{"aud": "http://elsewhere/token"}, {"iss": "someone"}, {"exp": int(time.time()) - 60}, {"jti": "reused"}],
)
def test_token_refuses_a_bad_assertion(platform, tool_keys, claims):
    platform.set_tool_jwks(tool_keys.jwks)
    if claims.get("jti"):
        assert ask_token(platform, client_assertion(platform, tool_keys, **claims)).status_code == 200
    answer = ask_token(platform, client_assertion(platform, tool_keys, **claims))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_token_reads_the_tool_keys_from_its_jwks_url(platform, tool_keys):
    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(tool_keys.jwks).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        platform.set_tool_jwks_url(f"http://127.0.0.1:{server.server_address[1]}/jwks")
        assert ask_token(platform, client_assertion(platform, tool_keys)).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


# --- NRPS -----------------------------------------------------------------------------------

MEMBERS = [
    {"user_id": f"u{n}", "name": f"Student {n}", "email": f"s{n}@school.example", "roles": [lti.LEARNER]}
    for n in range(5)
] + [{"user_id": "t1", "name": "Teacher", "roles": [lti.INSTRUCTOR], "status": "Inactive"}]


def test_nrps_pages_with_a_link_header(platform, tool, tool_keys):
    platform.set_members("Course-101", MEMBERS, context={"label": "NET101", "title": "Networking 101"})
    token = ask_token(platform, client_assertion(platform, tool_keys)).json()["access_token"]
    url = f"{platform.issuer}/nrps/Course-101/memberships"
    headers = {"Authorization": f"Bearer {token}", "Accept": lti.MEMBERSHIP_CONTAINER}
    seen, pages = [], 0
    next_url = url + "?limit=2"
    while next_url:
        answer = requests.get(next_url, headers=headers, timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == lti.MEMBERSHIP_CONTAINER
        assert answer.json()["context"] == {"id": "Course-101", "label": "NET101", "title": "Networking 101"}
        seen += answer.json()["members"]
        pages += 1
        next_url = answer.links.get("next", {}).get("url")
    assert pages == 3 and [m["user_id"] for m in seen] == ["u0", "u1", "u2", "u3", "u4", "t1"]
    assert seen[0]["status"] == "Active" and seen[-1]["status"] == "Inactive"
    assert "Link" not in requests.get(url, headers=headers, timeout=10).headers

    # pylti1p3 follows the pages (lowercasing the URLs it follows) the platform makes by itself
    platform.set_page_size(4)
    message = launch(platform, tool, context={"id": "Course-101", "label": "NET101", "title": "Networking 101"})
    members = message.get_nrps().get_members()
    assert [m["user_id"] for m in members] == ["u0", "u1", "u2", "u3", "u4", "t1"]
    assert sum(r["endpoint"] == "/token" for r in platform.refusals()) == 0


def test_nrps_needs_a_token_with_its_scope(platform, tool_keys):
    platform.set_tool_jwks(tool_keys.jwks)
    platform.set_members("course-101", MEMBERS)
    url = f"{platform.issuer}/nrps/course-101/memberships"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"Authorization": "Bearer made-up"}, timeout=10).status_code == 401
    token = ask_token(platform, client_assertion(platform, tool_keys), lti.SCOPE_SCORE).json()["access_token"]
    answer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"
    token = ask_token(platform, client_assertion(platform, tool_keys)).json()["access_token"]
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    platform.revoke_tokens()
    assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 401


# --- AGS ------------------------------------------------------------------------------------


def grade(user_id: str, score: float) -> Grade:
    return (
        Grade()
        .set_user_id(user_id)
        .set_score_given(score)
        .set_score_maximum(10)
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
        .set_timestamp(datetime.now(UTC).isoformat())
    )


def test_scores_are_recorded(platform, tool):
    message = launch(platform, tool, line_item={"label": "Lab 1", "scoreMaximum": 10})
    ags = message.get_ags()
    ags.put_grade(grade("lms-user-1", 7).set_comment("Routed"))
    (score,) = platform.scores()
    assert score["userId"] == "lms-user-1" and score["scoreGiven"] == 7 and score["comment"] == "Routed"
    assert score["lineItem"] == platform.line_items()[0]["id"] and score["contextId"] == "course-101"
    results = ags.get_grades(LineItem({"id": score["lineItem"]}))
    assert results[0]["resultScore"] == 7 and results[0]["userId"] == "lms-user-1"


def test_line_items_are_made_and_found(platform, tool):
    platform.set_members("course-101", MEMBERS)
    ags = launch(platform, tool).get_ags()
    wanted = LineItem().set_tag("lab-2").set_label("Lab 2").set_score_maximum(20).set_resource_id("lab-2")
    made = ags.find_or_create_lineitem(wanted)
    assert made.get_id().startswith(f"{platform.issuer}/ags/course-101/lineitems/")
    assert ags.find_or_create_lineitem(wanted).get_id() == made.get_id()
    assert [item["label"] for item in platform.line_items()] == ["Lab 2"]
    ags.put_grade(grade("u3", 15), made)
    assert [(s["userId"], s["lineItem"]) for s in platform.scores()] == [("u3", made.get_id())]


def test_a_score_for_someone_outside_the_course_is_refused(platform, tool):
    ags = launch(platform, tool, line_item={"label": "Lab 1", "scoreMaximum": 10}).get_ags()
    with pytest.raises(LtiServiceException) as raised:
        ags.put_grade(grade("stranger", 3))
    assert raised.value.response.status_code == 422
    assert platform.scores() == []


def test_a_malformed_score_is_refused_and_the_connection_stays_usable(platform, tool_keys):
    platform.set_tool_jwks(tool_keys.jwks)
    platform.prepare_launch(line_item={"label": "Lab 1", "scoreMaximum": 10})
    (item,) = platform.line_items()
    scores_url = item["id"] + "/scores"
    session = requests.Session()  # one kept-alive connection, as pylti1p3's
    score = {"userId": "lms-user-1", "scoreGiven": 5, "scoreMaximum": 10, "timestamp": "2026-01-01T10:00:00+00:00"}
    assert session.post(scores_url, json=score, timeout=10).status_code == 401  # no token, body unread
    assert session.get(platform.key_set_url, timeout=10).status_code == 200
    token = ask_token(platform, client_assertion(platform, tool_keys), lti.SCOPE_SCORE).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": lti.SCORE}
    answer = session.post(scores_url, data=json.dumps(score), headers=headers, timeout=10)
    assert answer.status_code == 400 and "activityProgress" in answer.json()["error_description"]
    score |= {"activityProgress": "Completed", "gradingProgress": "FullyGraded"}
    assert session.post(scores_url, data=json.dumps(score), headers=headers, timeout=10).status_code == 200
    earlier = score | {"timestamp": "2025-12-31T10:00:00+00:00"}
    assert session.post(scores_url, data=json.dumps(earlier), headers=headers, timeout=10).status_code == 400
    assert [s["timestamp"] for s in platform.scores()] == ["2026-01-01T10:00:00+00:00"]


# --- deep linking ---------------------------------------------------------------------------


def test_deep_linking_records_the_returned_items(platform, tool):
    message = launch(platform, tool, message_type=lti.DEEP_LINKING_REQUEST, roles=[lti.INSTRUCTOR])
    assert message.is_deep_link_launch()
    settings = message.get_launch_data()[lti.DL_SETTINGS]
    assert settings["deep_link_return_url"] == platform.deep_link_return_url
    resource = DeepLinkResource().set_url(LAUNCH_URL).set_title("ESXi lab").set_custom_params({"lab": "esxi"})
    token = message.get_deep_link().get_response_jwt([resource])
    answer = requests.post(platform.deep_link_return_url, data={"JWT": token}, timeout=10)
    assert answer.status_code == 200 and "Link added: ESXi lab" in answer.text
    (item,) = platform.deep_link_items()
    assert item["title"] == "ESXi lab" and item["url"] == LAUNCH_URL and item["custom"] == {"lab": "esxi"}
    assert item["context_id"] == "course-101" and item["data"] == settings["data"]


def test_deep_linking_refuses_a_response_the_tool_did_not_sign(platform, tool):
    message = launch(platform, tool, message_type=lti.DEEP_LINKING_REQUEST, roles=[lti.INSTRUCTOR])
    settings = message.get_launch_data()[lti.DL_SETTINGS]
    forged = jwt.encode(
        {
            "iss": platform.client_id,
            "aud": [platform.issuer],
            "exp": int(time.time()) + 60,
            "iat": int(time.time()),
            "nonce": "n",
            lti.MESSAGE_TYPE: lti.DEEP_LINKING_RESPONSE,
            lti.VERSION: "1.3.0",
            lti.DEPLOYMENT: platform.deployment_id,
            lti.DL_CONTENT_ITEMS: [{"type": "ltiResourceLink", "title": "Forged", "url": LAUNCH_URL}],
            lti.DL_DATA: settings["data"],
        },
        lti.make_key_pair().private_pem,
        algorithm="RS256",
        headers={"kid": tool.get_jwks(platform.issuer, platform.client_id)["keys"][0]["kid"]},
    )
    answer = requests.post(platform.deep_link_return_url, data={"JWT": forged}, timeout=10)
    assert answer.status_code == 400
    assert platform.deep_link_items() == []


def test_the_last_id_token_can_be_replayed(platform, tool):
    first = launch(platform, tool)
    last = platform.last_launch()
    assert last["id_token"] and last["state"]
    assert parse_qs(urlsplit(last["redirect_uri"]).query) == {}
    assert first.get_launch_data()["nonce"] == last["nonce"]
