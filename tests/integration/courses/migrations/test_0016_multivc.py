"""courses/migrations/0016_multivc.py: versions published before several vCenters keep working."""

import importlib

import pytest
from django.apps import apps

from courses.models import VersionBaseline
from tests.factories import published_version

pytestmark = pytest.mark.integration
migration = importlib.import_module("courses.migrations.0016_multivc")


@pytest.mark.django_db
def test_each_published_versions_one_endpoint_becomes_its_one_baseline():
    version = published_version()
    VersionBaseline.objects.all().delete()  # as the versions were before the migration

    migration.one_baseline_per_published_version(apps, None)
    migration.one_baseline_per_published_version(apps, None)  # run twice: still one

    baseline = version.baselines.get()
    assert baseline.endpoint_id == version.spec["endpoint_id"] == version.template.endpoint_id
    assert baseline.state == VersionBaseline.State.READY
    assert baseline.vms == {
        vm["role"]: {"moref": vm["source_moref"], "snapshot": vm["baseline_snapshot"]} for vm in version.spec["vms"]
    }
    assert version.ready_endpoint_ids() == [version.template.endpoint_id]
