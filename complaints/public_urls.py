"""The public complaint form and status check of a dealership (no sign-in), at the site root."""

from django.urls import path

from complaints import public_views

urlpatterns = [
    path("c/<slug:code>/", public_views.complaint_form, name="complaint_public_form"),
    path("c/<slug:code>/thanks/", public_views.complaint_thanks, name="complaint_public_thanks"),
    path("c/<slug:code>/status/", public_views.complaint_status, name="complaint_public_status"),
]
