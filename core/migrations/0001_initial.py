# The notices and the audit log moved from the project package (portal) to core (issue 12):
# their tables stay as they are (db_table), so this only tells Django's state where they live.

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("portal", "0005_console_category"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditEntry',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('when', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('actor_username', models.CharField(blank=True, help_text="The actor's user name at the time (for a failed login: the one tried).", max_length=150)),
                        ('category', models.CharField(choices=[('login', 'Login'), ('login_failed', 'Failed login'), ('logout', 'Logout'), ('lockout', 'Lockout'), ('token', 'API token'), ('refusal', 'Refusal'), ('operation', 'Operation'), ('console', 'Console')], max_length=16)),
                        ('action', models.CharField(help_text='A short machine name, e.g. lab.snapshot or auth.login.', max_length=64)),
                        ('target', models.CharField(blank=True, help_text='What it was done to, in words: "lab x (#12)".', max_length=255)),
                        ('target_type', models.CharField(blank=True, max_length=32)),
                        ('target_id', models.CharField(blank=True, max_length=64)),
                        ('result', models.CharField(choices=[('accepted', 'Accepted'), ('succeeded', 'Succeeded'), ('failed', 'Failed'), ('refused', 'Refused'), ('cancelled', 'Cancelled')], max_length=16)),
                        ('detail', models.TextField(blank=True, help_text='Why, or what came of it, in words.')),
                        ('source', models.CharField(choices=[('page', 'Page'), ('api', 'API'), ('websocket', 'WebSocket'), ('worker', 'Worker'), ('system', 'System')], max_length=16)),
                        ('remote_addr', models.GenericIPAddressField(blank=True, help_text="The client's address, if any.", null=True)),
                        ('actor', models.ForeignKey(blank=True, help_text='Who did it; empty for the portal itself and for failed logins.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='audit_entries', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name_plural': 'audit entries',
                        'db_table': 'portal_auditentry',
                        'ordering': ['-when', '-id'],
                        'indexes': [models.Index(fields=['category', 'when'], name='portal_audi_categor_03f08f_idx'), models.Index(fields=['actor_username', 'when'], name='portal_audi_actor_u_141771_idx'), models.Index(fields=['target_type', 'target_id'], name='portal_audi_target__204585_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='Notice',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('level', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('error', 'Error')], default='info', max_length=8)),
                        ('text', models.CharField(max_length=500)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('read_at', models.DateTimeField(blank=True, null=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notices', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'portal_notice',
                        'ordering': ['created_at'],
                        'indexes': [models.Index(fields=['user', 'read_at'], name='portal_noti_user_id_5c288a_idx')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
