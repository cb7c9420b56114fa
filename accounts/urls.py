from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("people/", views.people, name="people"),
]

# Sign-in keeps Django's own un-namespaced names (LOGIN_URL = "login", the templates' {% url 'login' %}).
sign_in_urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
