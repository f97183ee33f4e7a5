from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.i18n import set_language

from complaints import public_views as complaint_public
from crm.accounts.forms import AdminSignInForm
from crm.core import views as core_views
from crm.tenancy import views as tenancy_views
from surveys import public_views as survey_public

admin.site.site_header = "Dealership CRM · platform"
admin.site.login_form = AdminSignInForm  # same lockout and sign-in log as the staff sign-in

urlpatterns = [
    path("", core_views.home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("i18n/setlang/", login_not_required(set_language), name="set_language"),
    path("accounts/", include("crm.accounts.urls")),
    path("settings/", include("crm.tenancy.urls")),
    path("settings/nightly/", core_views.nightly_runs, name="nightly_runs"),
    path("notifications/", core_views.notifications, name="notifications"),
    path("permissions/", tenancy_views.permission_matrix, name="permissions"),
    path("customers/", include("customers.urls")),
    path("customers/", include("customers.import_urls")),
    path("customers/", include("customers.quality_urls")),
    path("segmentation/", include("segmentation.urls")),
    path("complaints/", include("complaints.urls")),
    path("surveys/", include("surveys.urls")),
    path("loyalty/", include("loyalty.urls")),
    path("followups/", include("followups.urls")),
    path("dashboards/", include("dashboards.urls")),
    # the public complaint form and status check of a dealership (no sign-in)
    path("c/<slug:code>/", complaint_public.complaint_form, name="complaint_public_form"),
    path("c/<slug:code>/thanks/", complaint_public.complaint_thanks, name="complaint_public_thanks"),
    path("c/<slug:code>/status/", complaint_public.complaint_status, name="complaint_public_status"),
    # a survey invitation's answer page (signed, single-use link; no sign-in)
    path("s/<str:token>/", survey_public.answer, name="survey_answer"),
    path("s/<str:token>/thanks/", survey_public.thanks, name="survey_thanks"),
    path("api/v1/", include("config.api", namespace="v1")),
    path(settings.ADMIN_URL, admin.site.urls),
]

handler403 = "crm.core.views.error_403"
handler404 = "crm.core.views.error_404"
handler500 = "crm.core.views.error_500"
