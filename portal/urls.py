"""URL routes: pages, the REST API under /api/v1/, its schema and docs."""

from allauth.socialaccount.providers.saml import views as saml_views
from csp.decorators import csp_update
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic.base import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views
from accounts.urls import sign_in_urlpatterns
from portal import audit_api, views

# allauth's SAML routes but single logout: Nestlab signs out locally, and an unsigned logout
# request from anywhere would otherwise sign a person out (allauth's metadata names the route).
saml_urlpatterns = [
    path("login/", saml_views.login, name="saml_login"),
    path("acs/", saml_views.acs, name="saml_acs"),
    path("acs/finish/", saml_views.finish_acs, name="saml_finish_acs"),
    path("metadata/", saml_views.metadata, name="saml_metadata"),
    path("sls/", account_views.saml_single_logout, name="saml_sls"),
]

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("courses.api.urls")),
    path("", include("labs.api.urls")),
    path("lti/", include("lti.api.urls")),
    path("audit/", audit_api.AuditEntryList.as_view(), name="audit-entry-list"),
    path("audit/export/", audit_api.audit_export, name="audit-entry-export"),
]

urlpatterns = [
    # First: every API poll passes here, and Django tries the patterns in order (the pages'
    # patterns before it cost a poll about a tenth of its CPU). No page path starts with api/v1/.
    path("api/v1/", include(api_v1)),
    path("", views.home, name="home"),
    path("", include(sign_in_urlpatterns)),
    # Identity providers (django-allauth): OpenID Connect's /accounts/oidc/<id>/login/ and its
    # callback; SAML's /accounts/saml/<id>/login/, acs/ and metadata/; and allauth's pages for a
    # sign-in that needs one more answer. Not allauth's own password pages.
    path("accounts/", include("allauth.socialaccount.providers.openid_connect.urls")),  # adds oidc/
    path("accounts/saml/<str:organization_slug>/", include(saml_urlpatterns)),
    path("accounts/3rdparty/", include("allauth.socialaccount.urls")),
    path("", include("accounts.urls")),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page's <link rel=icon> says: no 404 on every page.
    path("favicon.ico", RedirectView.as_view(url=static("img/nestlab.svg"), permanent=True)),
    path("audit/", views.audit_log, name="audit"),
    path("audit/export/", views.audit_export, name="audit-export"),
    path("labs/", include("labs.urls")),
    # LTI 1.3: the LMS's login initiation, launches, Nestlab's key set (lti/views.py).
    path("lti/", include("lti.urls")),
    path("", include("courses.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI's start-up script is a file of its own (the split view), but the UI sets
    # inline styles as it renders: the docs page, and only it, allows them.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]

handler400 = "portal.views.bad_request"
handler403 = "portal.views.permission_denied"
handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
