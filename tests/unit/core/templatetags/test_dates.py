"""portal/templatetags/dates.py."""

import datetime

from django.template import Context, Template
from django.test import override_settings

from core.templatetags.dates import day


def test_a_date_is_a_time_element_in_iso_8601_the_pickers_value_format():
    assert day(datetime.date(2026, 12, 4)) == '<time datetime="2026-12-04" data-date>2026-12-04</time>'


@override_settings(TIME_ZONE="Europe/Berlin")
def test_a_moment_is_the_date_where_the_portal_is():
    late_in_utc = datetime.datetime(2026, 12, 4, 23, 30, tzinfo=datetime.UTC)
    assert 'datetime="2026-12-05"' in day(late_in_utc)


def test_nothing_is_nothing_and_the_tag_is_not_escaped_in_a_template():
    assert day(None) == ""
    rendered = Template("{% load dates %}{{ when|day }}").render(Context({"when": datetime.date(2027, 1, 30)}))
    assert rendered == '<time datetime="2027-01-30" data-date>2027-01-30</time>'
