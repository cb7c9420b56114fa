from django.urls import path

from courses import guide_views, views

app_name = "courses"

urlpatterns = [
    path("endpoints/new/", views.endpoint_create, name="endpoint-create"),
    path("endpoints/<int:endpoint_id>/edit/", views.endpoint_edit, name="endpoint-edit"),
    path("endpoints/<int:endpoint_id>/delete/", views.endpoint_delete, name="endpoint-delete"),
    path("templates/", views.template_list, name="template-list"),
    path("templates/new/", views.template_create, name="template-create"),
    path("templates/preview/", views.markdown_preview, name="markdown-preview"),
    path("templates/<int:template_id>/", views.template_detail, name="template-detail"),
    path("templates/<int:template_id>/images/<str:name>", views.guide_image, name="guide-image"),
    path("templates/<int:template_id>/networks/", views.template_network_add, name="template-network-add"),
    path(
        "templates/<int:template_id>/networks/<int:network_id>/remove/",
        views.template_network_remove,
        name="template-network-remove",
    ),
    path("templates/<int:template_id>/vms/", views.template_vm_add, name="template-vm-add"),
    path("templates/<int:template_id>/vms/<int:vm_id>/", views.template_vm_edit, name="template-vm-edit"),
    path("templates/<int:template_id>/vms/<int:vm_id>/remove/", views.template_vm_remove, name="template-vm-remove"),
    path("templates/<int:template_id>/vms/<int:vm_id>/guest/", guide_views.template_vm_guest, name="template-vm-guest"),
    # The template's lab guide
    path("templates/<int:template_id>/guide/steps/", guide_views.guide_step_add, name="guide-step-add"),
    path("templates/<int:template_id>/guide/steps/<int:step_id>/", guide_views.guide_step_edit, name="guide-step-edit"),
    path(
        "templates/<int:template_id>/guide/steps/<int:step_id>/move/",
        guide_views.guide_step_move,
        name="guide-step-move",
    ),
    path(
        "templates/<int:template_id>/guide/steps/<int:step_id>/remove/",
        guide_views.guide_step_remove,
        name="guide-step-remove",
    ),
    path(
        "templates/<int:template_id>/guide/steps/<int:step_id>/checks/",
        guide_views.guide_check_add,
        name="guide-check-add",
    ),
    path(
        "templates/<int:template_id>/guide/checks/<int:check_id>/",
        guide_views.guide_check_edit,
        name="guide-check-edit",
    ),
    path(
        "templates/<int:template_id>/guide/checks/<int:check_id>/remove/",
        guide_views.guide_check_remove,
        name="guide-check-remove",
    ),
    path("templates/<int:template_id>/guide/images/", guide_views.guide_image_add, name="guide-image-add"),
    path(
        "templates/<int:template_id>/guide/images/<int:image_id>/remove/",
        guide_views.guide_image_remove,
        name="guide-image-remove",
    ),
    path("templates/<int:template_id>/guide/variables/", guide_views.guide_variable_add, name="guide-variable-add"),
    path(
        "templates/<int:template_id>/guide/variables/<int:variable_id>/",
        guide_views.guide_variable_edit,
        name="guide-variable-edit",
    ),
    path(
        "templates/<int:template_id>/guide/variables/<int:variable_id>/remove/",
        guide_views.guide_variable_remove,
        name="guide-variable-remove",
    ),
    path("courses/", views.course_list, name="course-list"),
    path("courses/new/", views.course_create, name="course-create"),
    path("courses/join/", views.course_join, name="course-join"),
    path("courses/<int:course_id>/", views.course_detail, name="course-detail"),
    path("courses/<int:course_id>/edit/", views.course_edit, name="course-edit"),
    path("courses/<int:course_id>/state/", views.course_state, name="course-state"),
    path("courses/<int:course_id>/join-code/", views.course_join_code, name="course-join-code"),
    path("courses/<int:course_id>/instructors/", views.course_instructor_add, name="course-instructor-add"),
    path(
        "courses/<int:course_id>/instructors/<int:user_id>/remove/",
        views.course_instructor_remove,
        name="course-instructor-remove",
    ),
    path("courses/<int:course_id>/roster/", views.roster_add, name="roster-add"),
    path("courses/<int:course_id>/roster/upload/", views.roster_upload, name="roster-upload"),
    path("courses/<int:course_id>/roster/<int:enrollment_id>/remove/", views.roster_remove, name="roster-remove"),
    path("courses/<int:course_id>/quota/", views.quota_edit, name="quota-edit"),
    path("courses/<int:course_id>/top-ups/", views.top_up_grant, name="top-up-grant"),
    path("courses/<int:course_id>/sessions/", views.class_session_add, name="class-session-add"),
    path(
        "courses/<int:course_id>/sessions/<int:session_id>/remove/",
        views.class_session_remove,
        name="class-session-remove",
    ),
]
