"""REST API of the accounts app: API tokens and instructor accounts. Thin: the same services as
the pages (accounts.services)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import permissions, selectors, services
from accounts.models import ApiKey
from core import roles
from core.api import ErrorSerializer, errors
from core.parsers import PARSERS

User = get_user_model()


class InstructorSerializer(serializers.ModelSerializer):
    """An instructor account. The password is write-only and checked by the password rules."""

    password = serializers.CharField(write_only=True, trim_whitespace=False, style={"input_type": "password"})

    class Meta:
        model = User
        fields = ["id", "username", "password", "email", "first_name", "last_name"]
        read_only_fields = ["id"]


class CreatesInstructors(BasePermission):
    message = "Only admins can add instructors."

    def has_permission(self, request, view) -> bool:
        return permissions.can_create_instructors(request.user)


# Sign-in


@extend_schema_view(
    post=extend_schema(
        summary="Get an API token for a username and password",
        description=(
            'Answers the caller\'s one API token, `{"token": "..."}`; send it as `Authorization: Token <token>`. '
            "The token is created on the first call; every later call with the password answers the same token "
            "again, until an admin deletes it in the admin site (there is no expiry yet). Wrong credentials "
            "answer 400."
        ),
        tags=["auth"],
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}),
            400: OpenApiResponse(
                ErrorSerializer, description="A missing field, or wrong credentials (also while rate-limited)."
            ),
        },
    )
)
class TokenCreateView(ObtainAuthToken):
    """DRF's token view. Its AuthTokenSerializer calls authenticate(request=...), which login
    rate limiting needs to see who is trying from where."""

    # Anyone may ask with a password; a browser session must not make this a CSRF-checked call.
    authentication_classes = []
    # ObtainAuthToken names DRF's own parsers; ours refuse too deep JSON (core/parsers.py).
    parser_classes = PARSERS

    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)  # a wrong password is a failed login (accounts.signals)
        user = serializer.validated_data["user"]
        token = services.api_token_hand_out(user=user, request=request)
        return Response({"token": token.key})


# People


@extend_schema_view(
    post=extend_schema(
        summary="Create an instructor account",
        description="Admins. The password must pass the password rules.",
        responses={201: InstructorSerializer, **errors(400, 403)},
    )
)
@extend_schema(tags=["instructors"])
class InstructorCreateView(generics.CreateAPIView):
    serializer_class = InstructorSerializer
    permission_classes = [IsAuthenticated, CreatesInstructors]

    def perform_create(self, serializer) -> None:
        try:
            serializer.instance = services.instructor_create(actor=self.request.user, **serializer.validated_data)
        except DjangoValidationError as error:
            if hasattr(error, "error_dict"):
                raise
            # The only field-less refusal is the password rules': name the field.
            raise DjangoValidationError({"password": error.error_list}) from error


# API keys of the person asking


class ApiKeySerializer(serializers.ModelSerializer):
    """A named API key: its first characters only; the whole key is in the answer that made it."""

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at"]


class NewApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The whole key: shown this once, never again.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


@extend_schema_view(
    list=extend_schema(summary="List your API keys", responses={200: ApiKeySerializer(many=True), **errors(403)}),
    create=extend_schema(
        summary="Make an API key",
        description="Answers the whole key once, in `key`; only its first characters are kept readable.",
        request=ApiKeySerializer,
        responses={201: NewApiKeySerializer, **errors(400, 403)},
    ),
    destroy=extend_schema(summary="Revoke one of your API keys", responses={204: None, **errors(403, 404)}),
)
@extend_schema(tags=["account"])
class ApiKeyViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """The caller's own API keys (the account page's, by the same services)."""

    serializer_class = ApiKeySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiKey.objects.none()
        return ApiKey.objects.filter(user=self.request.user)  # someone else's key does not exist here

    def create(self, request: Request, *args, **kwargs) -> Response:
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = services.api_key_create(
            user=request.user, name=serializer.validated_data["name"], request=request
        )
        key.key = secret
        return Response(NewApiKeySerializer(key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        services.api_key_revoke(key=instance, actor=self.request.user, request=self.request)


# Where people sign in from (admins)


class IdentitySourceSerializer(serializers.Serializer):
    """One place people sign in from, as the environment configures it (never a secret)."""

    kind = serializers.ChoiceField(choices=["local", "ldap", "oidc", "saml"])
    id = serializers.CharField()
    name = serializers.CharField()
    enabled_for = serializers.CharField(required=False, help_text="Local passwords: who may use them.")
    server = serializers.CharField(required=False, help_text="The directory, provider or IdP address.")
    client_id = serializers.CharField(required=False)
    entity_id = serializers.CharField(required=False)
    role_claim = serializers.CharField(required=False, help_text="The claim or attribute that gives the role.")
    roles = serializers.DictField(child=serializers.CharField(), required=False, help_text="Role -> value.")
    courses = serializers.DictField(child=serializers.CharField(), required=False, help_text="Value -> course code.")


class ManagesIdentity(BasePermission):
    message = "Only admins can see how people sign in."

    def has_permission(self, request, view) -> bool:
        return roles.is_admin(request.user)


@extend_schema(
    tags=["auth"],
    summary="List where people sign in from",
    description=(
        "The local passwords, the school's directory and each OpenID Connect and SAML provider, with the values "
        "that map to roles and courses. They are set in the environment (docs/identity.md); LMS platforms "
        "(LTI) are at /api/v1/lti/platforms/."
    ),
    responses={200: IdentitySourceSerializer(many=True), **errors(403)},
)
class IdentitySourceList(generics.GenericAPIView):
    permission_classes = [IsAuthenticated, ManagesIdentity]
    serializer_class = IdentitySourceSerializer
    pagination_class = None

    def get(self, request: Request) -> Response:
        return Response(IdentitySourceSerializer(selectors.identity_sources(), many=True).data)
