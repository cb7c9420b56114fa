from django.apps import AppConfig


class CoursesConfig(AppConfig):
    """Configuration: vCenter endpoints, templates, courses, enrollments and quotas."""

    name = "courses"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts.services import register_sign_in_hook
        from core.audit import register_object_kind
        from core.crypto import register_encrypted_fields
        from courses.services import identity_enrollments_apply

        register_encrypted_fields("courses.VCenterEndpoint", "password_ciphertext", "console_password_ciphertext")
        register_encrypted_fields("courses.TemplateVM", "guest_password_ciphertext")
        register_encrypted_fields("courses.TemplateVersion", "guest_accounts")
        register_sign_in_hook(lambda **kwargs: identity_enrollments_apply(**kwargs))

        register_object_kind("courses.Course", kind="course", words="course", url_kwarg="course_id")
        register_object_kind("courses.LabTemplate", kind="template", words="template", url_kwarg="template_id")
        register_object_kind("courses.TemplateVersion", kind="template_version", words="template version")
        register_object_kind("courses.VCenterEndpoint", kind="endpoint", words="vCenter", url_kwarg="endpoint_id")
        register_object_kind("courses.Enrollment", kind="enrollment", words="enrollment")
