from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("people/", views.people, name="people"),
    path("account/", views.account, name="account"),
    path("account/keys/", views.api_key_create, name="api-key-create"),
    path("account/keys/<int:key_id>/revoke/", views.api_key_revoke, name="api-key-revoke"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password-change"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent/",
        views.PasswordResetDoneView.as_view(),
        name="password-reset-done",
    ),
    path("password-reset/<uidb64>/<token>/", views.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
]

# Sign-in keeps Django's own un-namespaced names (LOGIN_URL = "login", the templates' {% url 'login' %}).
sign_in_urlpatterns = [
    path("login/", views.SignInView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
