from django.urls import path

from loyalty import views

app_name = "loyalty"

urlpatterns = [
    path("", views.members, name="members"),
    path("members/<int:pk>/", views.member_detail, name="member"),
    path("members/<int:pk>/redeem/", views.redeem, name="redeem"),
    path("members/<int:pk>/adjust/", views.adjust, name="adjust"),
    path("members/<int:pk>/level/", views.set_level, name="set_level"),
    path("enrol/", views.enrol, name="enrol"),
    path("ledger/", views.ledger, name="ledger"),
    path("redemptions/", views.redemptions, name="redemptions"),
    path("redemptions/<int:pk>/cancel/", views.redemption_cancel, name="redemption_cancel"),
    path("referrals/", views.referrals, name="referrals"),
    path("rewards/", views.rewards, name="rewards"),
    path("rewards/new/", views.reward_edit, name="reward_new"),
    path("rewards/<int:pk>/edit/", views.reward_edit, name="reward_edit"),
    path("levels/new/", views.level_edit, name="level_new"),
    path("levels/<int:pk>/edit/", views.level_edit, name="level_edit"),
    path("rules/new/", views.rule_edit, name="rule_new"),
    path("rules/<int:pk>/edit/", views.rule_edit, name="rule_edit"),
    path("care/<int:pk>/edit/", views.care_edit, name="care_edit"),
    path("settings/", views.settings_page, name="settings"),
    path("report/", views.report, name="report"),
]
