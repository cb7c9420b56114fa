from django.apps import AppConfig


class LtiConfig(AppConfig):
    """LTI 1.3 / LTI Advantage: Nestlab as a tool in Moodle, Canvas and other LMSs."""

    name = "lti"
    verbose_name = "LMS (LTI 1.3)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.audit import register_object_kind
        from core.crypto import register_encrypted_fields

        register_encrypted_fields("lti.ToolKey", "private_key_ciphertext")

        register_object_kind("lti.Platform", kind="lti_platform", words="LMS platform", url_kwarg="platform_id")
        register_object_kind("lti.CourseLink", kind="lti_link", words="LMS course link", url_kwarg="link_id")
