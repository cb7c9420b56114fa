from django.urls import path
from rest_framework.routers import SimpleRouter

from courses.api import guides, sessions, views

router = SimpleRouter()
router.register("endpoints", views.EndpointViewSet, basename="endpoint")
router.register("templates", views.TemplateViewSet, basename="template")
router.register("courses", views.CourseViewSet, basename="course")

LIST = {"get": "list", "post": "create"}
DETAIL = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path(
        "templates/<int:template_id>/networks/",
        views.TemplateNetworkViewSet.as_view(LIST),
        name="template-network-list",
    ),
    path(
        "templates/<int:template_id>/networks/<int:pk>/",
        views.TemplateNetworkViewSet.as_view({"delete": "destroy"}),
        name="template-network-detail",
    ),
    path("templates/<int:template_id>/vms/", views.TemplateVMViewSet.as_view(LIST), name="template-vm-list"),
    path(
        "templates/<int:template_id>/vms/<int:pk>/",
        views.TemplateVMViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="template-vm-detail",
    ),
    path(
        "templates/<int:template_id>/versions/",
        views.TemplateVersionViewSet.as_view({"get": "list"}),
        name="template-version-list",
    ),
    path(
        "templates/<int:template_id>/versions/<int:pk>/",
        views.TemplateVersionViewSet.as_view({"get": "retrieve"}),
        name="template-version-detail",
    ),
    path("templates/<int:template_id>/guide/steps/", guides.GuideStepViewSet.as_view(LIST), name="guide-step-list"),
    path(
        "templates/<int:template_id>/guide/steps/<int:pk>/",
        guides.GuideStepViewSet.as_view(DETAIL),
        name="guide-step-detail",
    ),
    path(
        "templates/<int:template_id>/guide/steps/<int:step_id>/checks/",
        guides.GuideCheckViewSet.as_view(LIST),
        name="guide-check-list",
    ),
    path(
        "templates/<int:template_id>/guide/steps/<int:step_id>/checks/<int:pk>/",
        guides.GuideCheckViewSet.as_view(DETAIL),
        name="guide-check-detail",
    ),
    path(
        "templates/<int:template_id>/guide/variables/",
        guides.GuideVariableViewSet.as_view(LIST),
        name="guide-variable-list",
    ),
    path(
        "templates/<int:template_id>/guide/variables/<int:pk>/",
        guides.GuideVariableViewSet.as_view(DETAIL),
        name="guide-variable-detail",
    ),
    path(
        "templates/<int:template_id>/guide/images/",
        guides.GuideImageViewSet.as_view(LIST),
        name="guide-image-list",
    ),
    path(
        "templates/<int:template_id>/guide/images/<int:pk>/",
        guides.GuideImageViewSet.as_view({"delete": "destroy"}),
        name="guide-image-detail",
    ),
    path("courses/<int:course_id>/enrollments/", views.EnrollmentViewSet.as_view(LIST), name="enrollment-list"),
    path(
        "courses/<int:course_id>/enrollments/<int:pk>/",
        views.EnrollmentViewSet.as_view({"delete": "destroy"}),
        name="enrollment-detail",
    ),
    path("courses/<int:course_id>/quota/", views.CourseQuotaView.as_view(), name="course-quota"),
    path("courses/<int:course_id>/sessions/", sessions.ClassSessionViewSet.as_view(LIST), name="class-session-list"),
    path(
        "courses/<int:course_id>/sessions/upcoming/",
        sessions.ClassSessionViewSet.as_view({"get": "upcoming"}, pagination_class=None),
        name="class-session-upcoming",
    ),
    path(
        "courses/<int:course_id>/sessions/<int:pk>/",
        sessions.ClassSessionViewSet.as_view(
            {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
        ),
        name="class-session-detail",
    ),
    *router.urls,
]
