from django.urls import path

from lti import views

app_name = "lti"

urlpatterns = [
    path("login/", views.login, name="login"),
    path("launch/", views.launch, name="launch"),
    path("jwks/", views.jwks, name="jwks"),
    path("deep-link/", views.deep_link, name="deep-link"),
    path("link-course/", views.link_course, name="link-course"),
    path("courses/<int:course_id>/links/", views.course_links, name="course-links"),
    path("links/<int:link_id>/sync/", views.roster_sync, name="roster-sync"),
    path("links/<int:link_id>/delete/", views.link_delete, name="link-delete"),
]
