# The notices and the audit log now live in core, the API token proxy in accounts (issue 12):
# Django's state forgets them here; the tables stay (core's models name them).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('portal', '0005_console_category'),
        ('core', '0001_initial'),
        ('accounts', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='auditentry',
                    name='actor',
                ),
                migrations.RemoveField(
                    model_name='notice',
                    name='user',
                ),
                migrations.DeleteModel(
                    name='ApiToken',
                ),
                migrations.DeleteModel(
                    name='AuditEntry',
                ),
                migrations.DeleteModel(
                    name='Notice',
                ),
            ],
            database_operations=[],
        ),
    ]
