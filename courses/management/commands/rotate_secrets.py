"""Re-encrypt every stored vCenter password with the newest key of NESTLAB_ENCRYPTION_KEYS."""

from django.core.management import BaseCommand
from django.db import transaction

from core import crypto
from courses.models import VCenterEndpoint


class Command(BaseCommand):
    help = (
        "Re-encrypt stored secrets with the first key of NESTLAB_ENCRYPTION_KEYS. Put the new key first "
        "(NEW,OLD), run this, then drop the old key."
    )

    def handle(self, *args, **options):
        count = 0
        with transaction.atomic():
            for endpoint in VCenterEndpoint.objects.select_for_update():
                endpoint.password_ciphertext = crypto.rotate(endpoint.password_ciphertext)
                if endpoint.console_password_ciphertext:
                    endpoint.console_password_ciphertext = crypto.rotate(endpoint.console_password_ciphertext)
                endpoint.save(update_fields=["password_ciphertext", "console_password_ciphertext"])
                count += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {count} endpoint(s) with the newest key."))
