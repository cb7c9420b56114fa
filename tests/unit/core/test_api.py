from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework import exceptions

from core.api import Conflict, exception_handler, link_created_objects


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


def _answer(status_code: str, component: str) -> dict:
    schema = {"$ref": f"#/components/schemas/{component}"}
    return {status_code: {"content": {"application/json": {"schema": schema}}, "description": ""}}


def _schema_of_a_small_api() -> dict:
    return {
        "paths": {
            "/api/v1/things/": {"post": {"operationId": "things_create", "responses": _answer("201", "Thing")}},
            "/api/v1/things/{id}/": {"get": {"operationId": "things_retrieve", "responses": {}}},
            "/api/v1/things/{thing_id}/parts/": {
                "post": {"operationId": "things_parts_create", "responses": _answer("201", "Thing")}
            },
            "/api/v1/things/{thing_id}/parts/{id}/": {
                "delete": {"operationId": "things_parts_destroy", "responses": {}}
            },
            "/api/v1/things/{thing_id}/parts/{id}/pieces/{piece_id}/": {
                "get": {"operationId": "pieces_retrieve", "responses": {}}
            },
            "/api/v1/labs/{id}/": {"get": {"operationId": "labs_retrieve", "responses": {}}},
            "/api/v1/labs/{id}/power/": {
                "post": {"operationId": "labs_power_create", "responses": _answer("202", "Operation")}
            },
            "/api/v1/things/{thing_id}/publish/": {
                "post": {"operationId": "things_publish_create", "responses": _answer("202", "Operation")}
            },
            "/api/v1/operations/{id}/": {"get": {"operationId": "operations_retrieve", "responses": {}}},
        },
        "components": {
            "schemas": {
                "Thing": {"properties": {"id": {}, "name": {}}},
                "Operation": {"properties": {"id": {}, "kind": {}, "lab": {}}},
            }
        },
    }


def test_a_create_links_to_the_routes_its_id_names():
    result = link_created_objects(_schema_of_a_small_api(), None, None, True)
    links = result["paths"]["/api/v1/things/"]["post"]["responses"]["201"]["links"]
    assert links == {
        "things_retrieve": {"operationId": "things_retrieve", "parameters": {"id": "$response.body#/id"}},
        "things_parts_create": {"operationId": "things_parts_create", "parameters": {"thing_id": "$response.body#/id"}},
        # publish is under the thing too
        "things_publish_create": {
            "operationId": "things_publish_create",
            "parameters": {"thing_id": "$response.body#/id"},
        },
    }
    nested = result["paths"]["/api/v1/things/{thing_id}/parts/"]["post"]["responses"]["201"]["links"]
    # the parent's id comes from the request's own path; a route needing an id nothing gives is left out
    assert nested == {
        "things_parts_destroy": {
            "operationId": "things_parts_destroy",
            "parameters": {"thing_id": "$request.path.thing_id", "id": "$response.body#/id"},
        }
    }


def test_an_accepted_action_links_to_its_operation_and_only_a_lab_action_to_its_lab():
    result = link_created_objects(_schema_of_a_small_api(), None, None, True)
    lab_links = result["paths"]["/api/v1/labs/{id}/power/"]["post"]["responses"]["202"]["links"]
    assert lab_links["operations_retrieve"]["parameters"] == {"id": "$response.body#/id"}
    assert lab_links["labs_retrieve"]["parameters"] == {"id": "$response.body#/lab"}
    publish_links = result["paths"]["/api/v1/things/{thing_id}/publish/"]["post"]["responses"]["202"]["links"]
    assert set(publish_links) == {"operations_retrieve"}
