"""factory_boy factories for the project's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from courses.models import VCenterEndpoint
from portal import roles

DEFAULT_PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.edu")

    @factory.post_generation
    def password(user, create, extracted, **kwargs):
        user.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            user.save()


class AdminFactory(UserFactory):
    username = factory.Sequence(lambda n: f"admin{n}")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if create:
            roles.role_grant(user=user, role=roles.Role.ADMIN)


class InstructorFactory(UserFactory):
    username = factory.Sequence(lambda n: f"instructor{n}")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if create:
            roles.role_grant(user=user, role=roles.Role.INSTRUCTOR)


class StudentFactory(UserFactory):
    username = factory.Sequence(lambda n: f"student{n}")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if create:
            roles.role_grant(user=user, role=roles.Role.STUDENT)


class EndpointFactory(factory.django.DjangoModelFactory):
    """An endpoint; ``simulator_endpoint(vcsim)`` points one at the test simulator."""

    class Meta:
        model = VCenterEndpoint
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"vCenter {n}")
    url = "https://vc.example.edu"
    username = "administrator@vsphere.local"
    verify_tls = False
    datacenter = "DC0"
    compute_path = "/DC0/host/DC0_C0"
    datastore = "LocalDS_0"
    lab_switch = "vSwitch0"
    vlan_min = 2000
    vlan_max = 2099
    concurrency_limit = 8

    @factory.post_generation
    def password(endpoint, create, extracted, **kwargs):
        endpoint.set_password(extracted or "secret")
        if create:
            endpoint.save()


def simulator_endpoint(vcsim, **overrides) -> VCenterEndpoint:
    """An endpoint that reaches the test session's simulator with its credentials."""
    fields = {"url": vcsim.url, "username": vcsim.username, "password": vcsim.password, **overrides}
    return EndpointFactory(**fields)
