"""portal/admin.py: the audit log in the site admin is read-only, and entries are append-only;
API tokens are listed masked."""

import pytest
from django.urls import reverse

from core.models import AuditEntry
from tests.factories import StudentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry():
    return AuditEntry.objects.create(
        category="refusal", action="labs:lab-reset", result="refused", source="page", detail="This is not your lab."
    )


def test_the_site_admin_shows_entries_but_adds_changes_and_deletes_none(client, entry):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    listing = client.get(reverse("admin:core_auditentry_changelist"))
    assert listing.status_code == 200 and b"labs:lab-reset" in listing.content
    detail = client.get(reverse("admin:core_auditentry_change", args=[entry.pk]))
    assert detail.status_code == 200 and b"This is not your lab." in detail.content
    assert b'name="_save"' not in detail.content
    assert client.get(reverse("admin:core_auditentry_add")).status_code == 403
    assert client.post(reverse("admin:core_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert client.post(reverse("admin:core_auditentry_change", args=[entry.pk]), {"detail": "x"}).status_code == 403
    entry.refresh_from_db()
    assert entry.detail == "This is not your lab."


def test_an_entry_once_written_is_never_saved_again(entry):
    entry.detail = "Rewritten history."
    with pytest.raises(ValueError, match="append-only"):
        entry.save()


def test_api_tokens_are_listed_masked_and_can_be_revoked(client):
    """Finding 6 (docs/security.md): DRF's admin showed every key in plain text."""
    from rest_framework.authtoken.models import Token

    owner = StudentFactory()
    token = Token.objects.create(user=owner)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get(reverse("admin:accounts_apitoken_changelist"))
    assert listing.status_code == 200
    page = listing.content.decode()
    assert owner.username in page and f"{token.key[:4]}…" in page
    assert token.key not in page
    detail = client.get(reverse("admin:accounts_apitoken_change", args=[owner.pk]))
    assert detail.status_code == 200 and token.key not in detail.content.decode()
    assert client.get(reverse("admin:accounts_apitoken_add")).status_code == 403
    client.post(reverse("admin:accounts_apitoken_delete", args=[owner.pk]), {"post": "yes"})
    assert not Token.objects.filter(user=owner).exists()


def test_quota_defaults_are_one_row_admins_edit_and_cannot_delete(client):
    from courses.models import QuotaDefaults

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:courses_quotadefaults_add")).status_code == 200
    QuotaDefaults(idle_minutes=30).save()
    assert client.get(reverse("admin:courses_quotadefaults_add")).status_code == 403
    assert client.post(reverse("admin:courses_quotadefaults_delete", args=[1]), {"post": "yes"}).status_code == 403
    response = client.post(reverse("admin:courses_quotadefaults_change", args=[1]), {"idle_minutes": "999999999"})
    assert response.status_code == 200 and "less than or equal to 525600" in response.content.decode()
    assert QuotaDefaults.current().idle_minutes == 30
