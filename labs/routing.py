from django.urls import path

from labs import consumers

websocket_urlpatterns = [
    path("ws/labs/<int:lab_id>/", consumers.LabConsumer.as_asgi()),
    path("ws/courses/<int:course_id>/", consumers.CourseConsumer.as_asgi()),
    path("ws/operations/<int:operation_id>/", consumers.OperationConsumer.as_asgi()),
    path("ws/console/<str:key>/", consumers.ConsoleConsumer.as_asgi()),
]
