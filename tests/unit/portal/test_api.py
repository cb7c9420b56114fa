from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework import exceptions

from portal.api import Conflict, exception_handler


def test_service_validation_error_on_fields_becomes_400_with_field_errors():
    response = exception_handler(ValidationError({"vlan_max": ["The VLAN range ends before it starts."]}), {})
    assert response.status_code == 400
    assert response.data["errors"] == {"vlan_max": ["The VLAN range ends before it starts."]}
    assert response.data["detail"] == "The VLAN range ends before it starts."


def test_service_validation_error_without_fields_becomes_400_with_detail():
    response = exception_handler(ValidationError("The operation already ended."), {})
    assert response.status_code == 400
    assert response.data == {"detail": "The operation already ended."}


def test_service_permission_denied_keeps_its_words():
    response = exception_handler(PermissionDenied("Only admins can check vCenter connections."), {})
    assert response.status_code == 403
    assert response.data["detail"] == "Only admins can check vCenter connections."


def test_serializer_errors_get_a_readable_detail_too():
    response = exception_handler(exceptions.ValidationError({"name": ["This field is required."]}), {})
    assert response.status_code == 400
    assert response.data["errors"] == {"name": ["This field is required."]}
    assert "name: This field is required." in response.data["detail"]


def test_errors_of_list_items_are_sentences_per_field_not_nested_objects():
    nested = {"students": {1: ["This field may not be blank."]}, "vms": [{}, {"role": ["Enter a valid slug."]}]}
    response = exception_handler(exceptions.ValidationError(nested), {})
    assert response.data["errors"] == {
        "students": ["item 2: This field may not be blank."],
        "vms": ["item 2: role: Enter a valid slug."],
    }
    assert response.data["detail"] == (
        "students: item 2: This field may not be blank. vms: item 2: role: Enter a valid slug."
    )


def test_conflict_is_409():
    response = exception_handler(Conflict("Lab 4 is busy: Snapshot #12 is running."), {})
    assert response.status_code == 409
    assert response.data["detail"] == "Lab 4 is busy: Snapshot #12 is running."
