"""The LTI tool's API shapes."""

from __future__ import annotations

from rest_framework import serializers

from lti.models import CourseLink, Platform
from lti.services import PLATFORM_FIELDS


class PlatformSerializer(serializers.ModelSerializer):
    """An LMS registered with Nestlab (the values the LMS shows when the tool is added)."""

    deployment_ids = serializers.ListField(
        child=serializers.CharField(max_length=255),
        min_length=1,
        max_length=50,
        help_text="The tool's deployment ids on the platform.",
    )

    class Meta:
        model = Platform
        # The fields an admin sets are the service's (lti.services.PLATFORM_FIELDS), in its order.
        fields = ["id", *PLATFORM_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness is the service's (model) check, so every path words it the same.
        validators = []


class CourseLinkSerializer(serializers.ModelSerializer):
    """An LMS course that opens a Nestlab course."""

    platform = serializers.CharField(source="platform.name", read_only=True)
    has_roster_service = serializers.SerializerMethodField()
    has_grade_book = serializers.SerializerMethodField()

    class Meta:
        model = CourseLink
        fields = [
            "id",
            "platform",
            "course",
            "context_id",
            "context_title",
            "deployment_id",
            "has_roster_service",
            "has_grade_book",
            "roster_synced_at",
            "roster_sync_result",
            "created_at",
        ]
        read_only_fields = fields

    def get_has_roster_service(self, link: CourseLink) -> bool:
        return bool(link.memberships_url)

    def get_has_grade_book(self, link: CourseLink) -> bool:
        return bool(link.lineitems_url)


class RosterSyncSerializer(serializers.Serializer):
    enrolled = serializers.IntegerField()
    removed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    detail = serializers.CharField()


class ScoreSerializer(serializers.Serializer):
    """A score for one student, sent to the LMS grade book."""

    student = serializers.IntegerField(help_text="The student's user id.")
    score_given = serializers.FloatField(min_value=0)
    score_maximum = serializers.FloatField(min_value=0.000001)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")


class ScoreSentSerializer(serializers.Serializer):
    line_item = serializers.CharField(help_text="The LMS grade book column the score went to.")


class KeyRotatedSerializer(serializers.Serializer):
    kid = serializers.CharField(help_text="The new signing key's id; every active key stays in /lti/jwks/.")
