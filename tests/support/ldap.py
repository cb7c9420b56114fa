"""A real directory for tests: Debian's slapd on a free port, with a small school in it (people
and the groups that give Nestlab roles), started and stopped like the vCenter simulator."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import ldap

from portal.simulator import free_port
from tests.support.processes import end_process

SUFFIX = "dc=school,dc=example"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "directory-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
STUDENTS = f"cn=nestlab-students,{GROUPS}"
INSTRUCTORS = f"cn=nestlab-instructors,{GROUPS}"
ADMINS = f"cn=nestlab-admins,{GROUPS}"
PASSWORD = "Campus-Passw0rd-7"

# uid: (given name, surname, groups)
DIRECTORY = {
    "ada": ("Ada", "Lovelace", [STUDENTS]),
    "grace": ("Grace", "Hopper", [INSTRUCTORS]),
    "linus": ("Linus", "Admin", [ADMINS]),
    "guest": ("Gus", "Guest", []),
}

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {work}/slapd.pid
argsfile {work}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{suffix}"
rootdn "{admin}"
rootpw {password}
directory {work}/data
"""


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def _ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: School\ndc: school\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for uid, (given, surname, _) in DIRECTORY.items():
        entries.append(
            f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {given} {surname}\n"
            f"givenName: {given}\nsn: {surname}\nmail: {uid}@school.example\nuserPassword: {PASSWORD}\n"
        )
    for group in (STUDENTS, INSTRUCTORS, ADMINS):
        members = [person_dn(uid) for uid, (_, _, groups) in DIRECTORY.items() if group in groups]
        name = group.split(",")[0].split("=")[1]
        # groupOfNames needs a member: the directory's admin is in each, so none is ever empty.
        lines = "".join(f"member: {dn}\n" for dn in [*members, ADMIN_DN])
        entries.append(f"dn: {group}\nobjectClass: groupOfNames\ncn: {name}\n{lines}")
    return "\n".join(entries)


class Directory:
    """slapd with the school above; ``url``, ``add_to``/``remove_from`` a group, ``stop``."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="nestlab-slapd-"))
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Directory:
        slapd = shutil.which("slapd") or "/usr/sbin/slapd"
        if not Path(slapd).exists():
            raise RuntimeError("slapd is missing: run `make system-deps` (apt-get install slapd).")
        (self.work / "data").mkdir()
        config = self.work / "slapd.conf"
        config.write_text(CONFIG.format(work=self.work, suffix=SUFFIX, admin=ADMIN_DN, password=ADMIN_PASSWORD))
        (self.work / "school.ldif").write_text(_ldif())
        subprocess.run(
            ["/usr/sbin/slapadd", "-f", str(config), "-l", str(self.work / "school.ldif")],
            check=True,
            capture_output=True,
        )
        # -d keeps slapd in the foreground (a child of the tests); 0: no debug output.
        self.process = subprocess.Popen(
            [slapd, "-f", str(config), "-h", f"{self.url}/", "-d", "0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self._admin().unbind_s()
                return self
            except ldap.SERVER_DOWN:
                if self.process.poll() is not None:
                    raise RuntimeError(f"slapd stopped: {self.process.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        raise RuntimeError("slapd did not answer within 15 s")

    def _admin(self):
        connection = ldap.initialize(self.url)
        connection.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
        return connection

    def add_to(self, group: str, uid: str) -> None:
        connection = self._admin()
        connection.modify_s(group, [(ldap.MOD_ADD, "member", [person_dn(uid).encode()])])
        connection.unbind_s()

    def remove_from(self, group: str, uid: str) -> None:
        connection = self._admin()
        connection.modify_s(group, [(ldap.MOD_DELETE, "member", [person_dn(uid).encode()])])
        connection.unbind_s()

    def stop(self) -> None:
        end_process(self.process)
        shutil.rmtree(self.work, ignore_errors=True)

    def settings(self) -> dict:
        """The AUTH_LDAP_* and Nestlab settings a portal uses to sign people in here."""
        from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

        return {
            "AUTH_LDAP_SERVER_URI": self.url,
            "AUTH_LDAP_BIND_DN": ADMIN_DN,
            "AUTH_LDAP_BIND_PASSWORD": ADMIN_PASSWORD,
            "AUTH_LDAP_USER_SEARCH": LDAPSearch(PEOPLE, ldap.SCOPE_SUBTREE, "(uid=%(user)s)"),
            "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(GROUPS, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"),
            "AUTH_LDAP_GROUP_TYPE": GroupOfNamesType(),
            "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
            "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
            "NESTLAB_LDAP_ROLE_GROUPS": {"admin": ADMINS, "instructor": INSTRUCTORS, "student": STUDENTS},
            "NESTLAB_LDAP_COURSE_GROUPS": {},
        }
