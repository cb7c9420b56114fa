from django.urls import path
from rest_framework.routers import SimpleRouter

from labs.api import guides, pools, usage, views

router = SimpleRouter()
router.register("operations", views.OperationViewSet, basename="operation")
router.register("labs", views.LabViewSet, basename="lab")
router.register("labs", guides.LabGuideViewSet, basename="lab-guide")
router.register("console-sessions", views.ConsoleSessionViewSet, basename="console-session")

urlpatterns = [
    path("endpoint-loads/", views.endpoint_loads, name="endpoint-loads"),
    path("endpoints/<int:endpoint_id>/check/", views.endpoint_check, name="endpoint-check"),
    path("endpoints/<int:endpoint_id>/reconcile/", views.endpoint_reconcile, name="endpoint-reconcile"),
    path("endpoints/<int:endpoint_id>/inventory/", views.endpoint_inventory, name="endpoint-inventory"),
    path("endpoints/<int:endpoint_id>/vms/<str:moref>/", views.endpoint_vm, name="endpoint-vm"),
    path("templates/<int:template_id>/publish/", views.template_publish, name="template-publish"),
    path("templates/<int:template_id>/prepare/", views.template_prepare, name="template-prepare"),
    # Course routes that need vCenter live here: courses never imports labs.
    path("courses/<int:course_id>/provision/", views.course_provision, name="course-provision"),
    path("courses/<int:course_id>/labs/bulk/", views.course_labs_bulk, name="course-labs-bulk"),
    path("courses/<int:course_id>/pool/", pools.course_pool, name="course-pool"),
    path("courses/<int:course_id>/usage/report/", usage.course_usage_report, name="course-usage-report"),
    path("courses/<int:course_id>/usage/report.csv", usage.course_usage_report_csv, name="course-usage-report-csv"),
    path("courses/<int:course_id>/guide/progress/", guides.course_guide_progress, name="course-guide-progress"),
    path(
        "courses/<int:course_id>/guide/progress.csv",
        guides.course_guide_progress_csv,
        name="course-guide-progress-csv",
    ),
    path("courses/<int:course_id>/guide/check/", guides.course_guide_check, name="course-guide-check"),
    path("courses/<int:course_id>/guide/scores/", guides.course_guide_scores, name="course-guide-scores"),
    path("usage/", usage.usage_report, name="usage-report"),
    path("usage.csv", usage.usage_report_csv, name="usage-report-csv"),
    *router.urls,
]
