"""Re-encrypt every stored secret (vCenter passwords, Nestlab's LTI signing keys, whatever an app
registered in core.crypto.ENCRYPTED_FIELDS) with the newest key of NESTLAB_ENCRYPTION_KEYS."""

from django.apps import apps
from django.core.management import BaseCommand
from django.db import transaction

from core import crypto


def _rotated(value):
    """A ciphertext re-encrypted; in a JSON field (e.g. a template version's guest accounts), every
    ``*_ciphertext`` value inside it."""
    if isinstance(value, str):
        return crypto.rotate(value) if value else value
    if isinstance(value, dict):
        return {
            key: _rotated(item) if isinstance(item, dict) or key.endswith("_ciphertext") else item
            for key, item in value.items()
        }
    return value


class Command(BaseCommand):
    help = (
        "Re-encrypt stored secrets with the first key of NESTLAB_ENCRYPTION_KEYS. Put the new key first "
        "(NEW,OLD), run this, then drop the old key."
    )

    def handle(self, *args, **options):
        counts = []
        with transaction.atomic():
            for label, fields in sorted(crypto.ENCRYPTED_FIELDS.items()):
                model = apps.get_model(label)
                count = 0
                for row in model.objects.select_for_update():
                    for field in fields:
                        if getattr(row, field):
                            setattr(row, field, _rotated(getattr(row, field)))
                    row.save(update_fields=list(fields))
                    count += 1
                counts.append(f"{count} {model._meta.verbose_name_plural}")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the secrets of {', '.join(counts)} with the newest key."))
