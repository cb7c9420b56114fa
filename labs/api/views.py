"""REST API of the labs app: thin; the same services as the pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.request import Request
from rest_framework.response import Response

from courses.models import VCenterEndpoint
from labs import selectors, services
from labs.api.serializers import OperationSerializer
from labs.models import Operation


class OperationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Operations on vCenter: admins see all, everyone else their own."""

    serializer_class = OperationSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Operation.objects.none()
        return selectors.operation_list(user=self.request.user)

    @extend_schema(request=None, responses={200: OperationSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        operation = services.operation_cancel(operation=self.get_object(), actor=request.user)
        return Response(OperationSerializer(operation).data)


@extend_schema(
    request=None,
    responses={202: OperationSerializer, 403: OpenApiResponse(description="Not an admin.")},
    summary="Check a vCenter endpoint's address, login and placement",
)
@api_view(["POST"])
def endpoint_check(request: Request, endpoint_id: int) -> Response:
    endpoint = get_object_or_404(VCenterEndpoint, pk=endpoint_id)
    operation = services.endpoint_check_start(endpoint=endpoint, actor=request.user)
    return Response(OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)
