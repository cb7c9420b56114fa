from django.conf import settings
from django.core.management import BaseCommand, CommandError

from portal.demo import DEMO_ACCOUNTS, seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo accounts, endpoint, template and course (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--vcenter-url", default="http://127.0.0.1:8989/sdk")
        parser.add_argument("--vcenter-user", default="administrator@vsphere.local")
        parser.add_argument("--vcenter-password", default="nestlab")
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG off (the demo passwords are public)."
        )

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "The demo has well-known passwords (admin / nestlab-admin): it is seeded only with DEBUG on. "
                "Use --force if you really mean it."
            )
        seed_demo(
            vcenter_url=options["vcenter_url"],
            vcenter_user=options["vcenter_user"],
            vcenter_password=options["vcenter_password"],
        )
        self.stdout.write(self.style.SUCCESS("Demo logins (username / password):"))
        for account in DEMO_ACCOUNTS:
            self.stdout.write(f"  {account.role.value:<10} {account.username:<12} {account.password}")
