# The API token proxy moved from the project package (portal) to accounts (issue 12); a proxy
# has no table, so only Django's state changes.

from django.db import migrations


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('authtoken', '0004_alter_tokenproxy_options'),
        ('portal', '0005_console_category'),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
            ],
            options={
                'verbose_name': 'API token',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('authtoken.tokenproxy',),
        ),
    ]
