"""The REST routes of a course's warm pool (labs.pools): read it, size it. The same service and
checks as the class page's panel: the course's instructors and admins; others get 403, and a
course they cannot see 404."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import errors
from labs import pools
from labs.api.serializers import PoolSerializer
from labs.api.views import _course


@extend_schema(
    methods=["GET"],
    tags=["courses"],
    summary="A course's warm pool: its size, and what it holds now",
    description="The course's instructors and admins. Ready and building count labs of the course's current "
    "template version; given_today counts pool labs handed to students since midnight.",
    responses={200: PoolSerializer, **errors(403, 404)},
)
@extend_schema(
    methods=["PUT"],
    tags=["courses"],
    summary="Size a course's warm pool",
    description="The course's instructors and admins. The pool fills or shrinks right after, by the portal's "
    "own operations, within the quota (pool_labs and the class's vCPU, memory and storage). A size out of "
    "bounds or an unknown sizing is a 400 in words, and nothing changes.",
    request=PoolSerializer,
    responses={200: PoolSerializer, **errors(400, 403, 404)},
)
@api_view(["GET", "PUT"])
def course_pool(request: Request, course_id: int) -> Response:
    course = _course(request, course_id)
    if request.method == "PUT":
        serializer = PoolSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        pools.pool_set(course=course, actor=request.user, **serializer.validated_data)
    return Response(PoolSerializer(pools.pool_get(course=course, actor=request.user)).data)
