"""A real OpenID Connect provider for tests: oidc-provider (npm) in Node, started on a free port
like the simulator (tests/support/oidc/provider.mjs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from portal.simulator import free_port
from tests.support.processes import end_process

HERE = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "nestlab"
CLIENT_SECRET = "nestlab-test-secret"
ROLES = {"admin": "nestlab-admins", "instructor": "nestlab-instructors", "student": "nestlab-students"}


class OidcProvider:
    """``url``; ``accounts`` (sub -> claims) written with ``set_account``; ``provider_setting``
    for NESTLAB_OIDC_PROVIDERS."""

    def __init__(self, redirect_uris: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.work = Path(tempfile.mkdtemp(prefix="nestlab-oidc-"))
        self.accounts_file = self.work / "accounts.json"
        self.accounts: dict[str, dict] = {}
        self.redirect_uris = redirect_uris
        self.process: subprocess.Popen | None = None

    def set_account(self, sub: str, **claims) -> None:
        self.accounts[sub] = claims
        self.accounts_file.write_text(json.dumps(self.accounts))

    def start(self) -> OidcProvider:
        if not (HERE / "node_modules" / "oidc-provider").exists():
            subprocess.run(
                ["npm", "ci", "--silent", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True
            )
        clients = [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": self.redirect_uris,
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ]
        (self.work / "clients.json").write_text(json.dumps(clients))
        self.accounts_file.write_text(json.dumps(self.accounts))
        node = shutil.which("node") or "node"
        self.process = subprocess.Popen(
            [
                node,
                str(HERE / "provider.mjs"),
                str(self.port),
                str(self.work / "clients.json"),
                str(self.accounts_file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/.well-known/openid-configuration", timeout=1):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    output = self.process.stdout.read().decode()[-2000:]
                    raise RuntimeError(f"the OIDC provider stopped: {output}") from None
                time.sleep(0.1)
        raise RuntimeError("the OIDC provider did not answer within 20 s")

    def provider_setting(self) -> dict:
        return {
            "id": "school",
            "name": "School account",
            "server_url": self.url,
            "client_id": CLIENT_ID,
            "secret": CLIENT_SECRET,
            "role_claim": "groups",
            "roles": ROLES,
        }

    def stop(self) -> None:
        end_process(self.process)
        shutil.rmtree(self.work, ignore_errors=True)
