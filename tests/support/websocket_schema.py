"""The WebSocket message schema (docs/websocket.schema.json) as a validator for tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "websocket.schema.json"


@cache
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        json.loads(SCHEMA.read_text()), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def check_message(message: dict) -> dict:
    """Raise with the schema's complaint if ``message`` is not a valid WebSocket message."""
    errors = sorted(validator().iter_errors(message), key=lambda e: e.path)
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise AssertionError(f"WebSocket message does not match docs/websocket.schema.json: {best.message}\n{message}")
    return message
