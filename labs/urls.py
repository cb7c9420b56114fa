from django.urls import path

from labs import views

app_name = "labs"

urlpatterns = [
    path("endpoints/<int:endpoint_id>/check/", views.endpoint_check, name="endpoint-check"),
    path("operations/<int:operation_id>/", views.operation_detail, name="operation-detail"),
]
