"""A survey invitation's answer page, reached by its signed single-use link (no sign-in), at the site root."""

from django.urls import path

from surveys import public_views

urlpatterns = [
    path("s/<str:token>/", public_views.answer, name="survey_answer"),
    path("s/<str:token>/thanks/", public_views.thanks, name="survey_thanks"),
]
