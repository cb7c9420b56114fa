from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import views

router = SimpleRouter()
router.register("account/keys", views.ApiKeyViewSet, basename="api-key")

urlpatterns = [
    *router.urls,
    path("auth/token/", views.TokenCreateView.as_view(), name="auth-token"),
    path("instructors/", views.InstructorCreateView.as_view(), name="instructor-create"),
    path("identity/sources/", views.IdentitySourceList.as_view(), name="identity-source-list"),
]
