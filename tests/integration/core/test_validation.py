import pytest
from django.core.exceptions import ValidationError

from core.models import Notice
from core.validation import save_valid
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


def test_a_row_within_its_bounds_is_saved():
    notice = Notice(user=StudentFactory(), text="Your lab was powered off.")
    save_valid(notice)
    assert Notice.objects.get(pk=notice.pk).text == "Your lab was powered off."


def test_a_row_past_a_bound_is_refused_in_words_and_not_saved():
    notice = Notice(user=StudentFactory(), level="loud", text="x" * 501)
    with pytest.raises(ValidationError) as refused:
        save_valid(notice)
    assert set(refused.value.message_dict) == {"level", "text"}
    assert "at most 500 characters" in " ".join(refused.value.message_dict["text"])
    assert not Notice.objects.exists()


def test_a_trusted_relation_is_not_looked_up_but_every_other_bound_still_holds(django_assert_num_queries):
    """``trusted``: a related row the caller holds is not read again (labs.services.operation_start)."""
    student = StudentFactory()
    with django_assert_num_queries(2):  # the existence check of the user, and the insert
        save_valid(Notice(user=student, text="checked"))
    with django_assert_num_queries(1):  # the insert only
        save_valid(Notice(user=student, text="trusted"), trusted=["user"])
    with pytest.raises(ValidationError) as refused:
        save_valid(Notice(user=student, level="loud", text="trusted"), trusted=["user"])
    assert set(refused.value.message_dict) == {"level"}
