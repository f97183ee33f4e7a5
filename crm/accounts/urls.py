from django.urls import path

from crm.accounts import views

app_name = "accounts"

urlpatterns = [
    path("sign-in/", views.SignInView.as_view(), name="login"),
    path("sign-out/", views.sign_out, name="logout"),
    path("set-password/<uidb64>/<token>/", views.SetPasswordView.as_view(), name="set_password"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("switch-dealership/", views.switch_tenant, name="switch_tenant"),
    path("language/", views.language_set, name="set_language"),
    path("notifications/", views.notification_preferences_page, name="notification_preferences"),
]
