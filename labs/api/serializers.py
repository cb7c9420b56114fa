from __future__ import annotations

from rest_framework import serializers

from labs.models import Operation


class OperationSerializer(serializers.ModelSerializer):
    """An operation as the API and the pages see it."""

    actor = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "kind",
            "state",
            "progress",
            "step",
            "error",
            "result",
            "actor",
            "endpoint",
            "cancel_requested",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
        ]
        read_only_fields = fields
