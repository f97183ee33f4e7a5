"""The root URLconf: every app's own URL list under its prefix, the API, the Django admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from crm.accounts.forms import AdminSignInForm

admin.site.site_header = "Dealership CRM · platform"
admin.site.login_form = AdminSignInForm  # same lockout and sign-in log as the staff sign-in

urlpatterns = [
    path("", include("crm.core.urls")),
    path("accounts/", include("crm.accounts.urls")),
    path("settings/", include("crm.tenancy.urls")),
    path("customers/", include("customers.urls")),
    path("customers/", include("customers.import_urls")),
    path("customers/", include("customers.quality_urls")),
    path("segmentation/", include("segmentation.urls")),
    path("complaints/", include("complaints.urls")),
    path("surveys/", include("surveys.urls")),
    path("loyalty/", include("loyalty.urls")),
    path("followups/", include("followups.urls")),
    path("sales/", include("sales.urls")),
    path("dashboards/", include("dashboards.urls")),
    path("", include("complaints.public_urls")),
    path("", include("surveys.public_urls")),
    path("api/v1/", include("config.api", namespace="v1")),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler400 = "crm.core.views.error_400"
handler403 = "crm.core.views.error_403"
handler404 = "crm.core.views.error_404"
handler500 = "crm.core.views.error_500"
