"""Configuration models: what the portal knows about vCenters, templates and courses."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from portal import crypto

VLAN_ID_VALIDATORS = [MinValueValidator(1), MaxValueValidator(4094)]


class VCenterEndpoint(models.Model):
    """A vCenter that hosts labs, and where on it labs are placed.

    The password is stored encrypted (portal.crypto) and is write-only everywhere:
    set it with ``set_password`` and read it only to open a vSphere session.
    """

    name = models.CharField(max_length=100, unique=True)
    url = models.CharField(
        max_length=255,
        help_text="Address of the vCenter, e.g. https://vcenter.example.edu (the /sdk path is implied).",
    )
    username = models.CharField(max_length=150)
    password_ciphertext = models.TextField(editable=False)
    verify_tls = models.BooleanField(
        default=True, help_text="Check the vCenter's TLS certificate (turn off only for labs)."
    )
    datacenter = models.CharField(max_length=100)
    compute_path = models.CharField(
        max_length=255,
        help_text="Inventory path of the cluster or resource pool labs run in, e.g. /DC0/host/DC0_C0.",
    )
    datastore = models.CharField(max_length=100)
    lab_switch = models.CharField(
        max_length=100,
        help_text=(
            "Standard vSwitch name (present on every host of the cluster) "
            "or distributed switch name, for lab networks."
        ),
    )
    vlan_min = models.PositiveSmallIntegerField(validators=VLAN_ID_VALIDATORS, default=2000)
    vlan_max = models.PositiveSmallIntegerField(validators=VLAN_ID_VALIDATORS, default=2999)
    concurrency_limit = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(1)],
        help_text="How many clone-class tasks may run on this vCenter at once.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "vCenter endpoint"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.vlan_min is not None and self.vlan_max is not None and self.vlan_min > self.vlan_max:
            raise ValidationError({"vlan_max": "The VLAN range ends before it starts."})

    def set_password(self, raw_password: str) -> None:
        self.password_ciphertext = crypto.encrypt(raw_password)

    def get_password(self) -> str:
        return crypto.decrypt(self.password_ciphertext)
