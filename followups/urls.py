from django.urls import path

from followups import views

app_name = "followups"

urlpatterns = [
    path("", views.today, name="today"),
    path("all/", views.followup_list, name="list"),
    path("calendar/", views.calendar, name="calendar"),
    path("team/", views.team, name="team"),
    path("team/hand-over/", views.hand_over, name="hand_over"),
    path("plan/", views.plan, name="plan"),
    path("settings/", views.settings_page, name="settings"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/outcome/", views.outcome, name="outcome"),
    path("<int:pk>/assign/", views.assign, name="assign"),
    path("<int:pk>/take/", views.take, name="take"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
]
