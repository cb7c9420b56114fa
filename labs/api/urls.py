from django.urls import path
from rest_framework.routers import SimpleRouter

from labs.api import views

router = SimpleRouter()
router.register("operations", views.OperationViewSet, basename="operation")

urlpatterns = [
    path("endpoints/<int:endpoint_id>/check/", views.endpoint_check, name="endpoint-check"),
    *router.urls,
]
