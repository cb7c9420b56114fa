from django.core.management import BaseCommand

from portal.demo import DEMO_ACCOUNTS, seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo accounts and the simulator's vCenter endpoint."

    def add_arguments(self, parser):
        parser.add_argument("--vcenter-url", default="http://127.0.0.1:8989/sdk")
        parser.add_argument("--vcenter-user", default="administrator@vsphere.local")
        parser.add_argument("--vcenter-password", default="nestlab")

    def handle(self, *args, **options):
        seed_demo(
            vcenter_url=options["vcenter_url"],
            vcenter_user=options["vcenter_user"],
            vcenter_password=options["vcenter_password"],
        )
        self.stdout.write(self.style.SUCCESS("Demo logins (username / password):"))
        for account in DEMO_ACCOUNTS:
            self.stdout.write(f"  {account.role.value:<10} {account.username:<12} {account.password}")
