from django.urls import path

from labs import guide_views, pool_views, usage_views, views

app_name = "labs"

urlpatterns = [
    path("endpoints/<int:endpoint_id>/check/", views.endpoint_check, name="endpoint-check"),
    path("endpoints/<int:endpoint_id>/reconcile/", views.endpoint_reconcile, name="endpoint-reconcile"),
    path("endpoints/<int:endpoint_id>/inventory/", views.endpoint_inventory, name="endpoint-inventory"),
    path("endpoints/<int:endpoint_id>/vms/<str:moref>/", views.endpoint_vm, name="endpoint-vm"),
    path("templates/<int:template_id>/publish/", views.template_publish, name="template-publish"),
    path("templates/<int:template_id>/prepare/", views.template_prepare, name="template-prepare"),
    path("operations/<int:operation_id>/", views.operation_detail, name="operation-detail"),
    # A student's lab
    path("courses/<int:course_id>/start/", views.lab_start, name="lab-start"),
    path("courses/<int:course_id>/mine/", views.course_lab, name="course-lab"),
    path("<int:lab_id>/", views.lab_detail, name="lab-detail"),
    path("<int:lab_id>/fragments/<str:fragment>/", views.lab_fragment, name="lab-fragment"),
    path("<int:lab_id>/snapshots/", views.lab_snapshot_create, name="lab-snapshot-create"),
    path("<int:lab_id>/snapshots/<int:snapshot_id>/revert/", views.lab_revert, name="lab-revert"),
    path("<int:lab_id>/snapshots/<int:snapshot_id>/delete/", views.lab_snapshot_delete, name="lab-snapshot-delete"),
    path("<int:lab_id>/reset/", views.lab_reset, name="lab-reset"),
    path("<int:lab_id>/extend/", views.lab_extend, name="lab-extend"),
    path("<int:lab_id>/clone/", views.lab_clone, name="lab-clone"),
    path("<int:lab_id>/power/", views.lab_power, name="lab-power"),
    path("<int:lab_id>/delete/", views.lab_delete, name="lab-delete"),
    path("<int:lab_id>/cancel/", views.lab_cancel, name="lab-cancel"),
    path("<int:lab_id>/guide/check/", guide_views.lab_guide_check, name="lab-guide-check"),
    path("<int:lab_id>/guide/done/", guide_views.lab_guide_step_complete, name="lab-guide-done"),
    path("<int:lab_id>/guide/position/", guide_views.lab_guide_position, name="lab-guide-position"),
    path("<int:lab_id>/vms/<int:vm_id>/power/", views.lab_vm_power, name="lab-vm-power"),
    path("<int:lab_id>/vms/<int:vm_id>/console/", views.lab_vm_console, name="lab-vm-console"),
    # The instructor's class table
    path("courses/<int:course_id>/", views.class_labs, name="class-labs"),
    path("courses/<int:course_id>/fragments/table/", views.class_table, name="class-table"),
    path("courses/<int:course_id>/consoles/", views.class_consoles, name="class-consoles"),
    path("courses/<int:course_id>/provision/", views.class_provision, name="class-provision"),
    path("courses/<int:course_id>/actions/", views.class_action, name="class-action"),
    path("courses/<int:course_id>/pool/", pool_views.class_pool_set, name="class-pool-set"),
    path("courses/<int:course_id>/fragments/pool/", pool_views.class_pool, name="class-pool"),
    # The instructor's progress grid of the lab guide
    path("courses/<int:course_id>/progress/", guide_views.course_progress, name="course-progress"),
    path("courses/<int:course_id>/fragments/progress/", guide_views.course_progress_grid, name="course-progress-grid"),
    path("courses/<int:course_id>/progress.csv", guide_views.course_progress_csv, name="course-progress-csv"),
    path("courses/<int:course_id>/progress/check/", guide_views.course_check, name="course-check"),
    path("courses/<int:course_id>/progress/scores/", guide_views.course_scores_send, name="course-scores-send"),
    # Usage reports
    path("courses/<int:course_id>/usage/", usage_views.course_usage, name="course-usage"),
    path("courses/<int:course_id>/usage.csv", usage_views.course_usage_csv, name="course-usage-csv"),
    path("usage/", usage_views.usage_overview, name="usage"),
    path("usage.csv", usage_views.usage_overview_csv, name="usage-csv"),
]
