from django.urls import path
from rest_framework.routers import SimpleRouter

from lti.api import views

router = SimpleRouter()
router.register("platforms", views.PlatformViewSet, basename="lti-platform")
router.register("links", views.CourseLinkViewSet, basename="lti-link")

urlpatterns = [
    path("links/<int:link_id>/sync/", views.roster_sync, name="lti-link-sync"),
    path("links/<int:link_id>/scores/", views.score_send, name="lti-link-score"),
    path("keys/rotate/", views.KeyRotateView.as_view(), name="lti-key-rotate"),
    *router.urls,
]
