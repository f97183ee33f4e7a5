from django.urls import path

from crm.tenancy import views

app_name = "tenancy"

urlpatterns = [
    path("staff/", views.member_list, name="members"),
    path("staff/<int:pk>/", views.member_detail, name="member"),
    path("api-keys/", views.credential_list, name="credentials"),
    path("api-keys/<int:pk>/revoke/", views.credential_revoke, name="credential_revoke"),
    path("audit/", views.audit_log, name="audit"),
    path("dealership/", views.dealership_settings, name="dealership"),
]
