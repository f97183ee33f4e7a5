from django.urls import path

from sales import manager_views, views

app_name = "sales"

urlpatterns = [
    path("", views.today, name="today"),
    path("leads/", views.lead_list, name="leads"),
    path("leads/export/", manager_views.lead_export, name="lead_export"),
    path("leads/new/", views.lead_new, name="lead_new"),
    path("leads/pool/", manager_views.pool, name="pool"),
    path("leads/<int:pk>/", views.lead_detail, name="lead"),
    path("leads/<int:pk>/edit/", views.lead_edit, name="lead_edit"),
    path("leads/<int:pk>/contact/", views.lead_contact, name="lead_contact"),
    path("leads/<int:pk>/invite/", views.lead_invite, name="lead_invite"),
    path("leads/<int:pk>/assign/", manager_views.lead_assign, name="lead_assign"),
    path("leads/<int:pk>/take/", views.lead_take, name="lead_take"),
    path("leads/<int:pk>/test-drive/", views.test_drive_new, name="test_drive_new"),
    path("leads/<int:pk>/quote/", views.quote_new, name="quote_new"),
    path("leads/<int:pk>/order/", views.lead_order, name="lead_order"),
    path("leads/<int:pk>/deliver/", views.lead_deliver, name="lead_deliver"),
    path("leads/<int:pk>/defeat/", views.lead_defeat, name="lead_defeat"),
    path("leads/<int:pk>/defeat/decide/", views.lead_defeat_decide, name="lead_defeat_decide"),
    path("leads/<int:pk>/reopen/", views.lead_reopen, name="lead_reopen"),
    path("customers/<int:customer_id>/lead/", views.lead_of_customer, name="lead_of_customer"),
    path("quotes/<int:pk>/", views.quote_print, name="quote_print"),
    path("test-drives/", views.test_drives, name="test_drives"),
    path("test-drives/<int:pk>/", views.test_drive_detail, name="test_drive"),
    path("test-drives/<int:pk>/agreement/", views.test_drive_agreement, name="test_drive_agreement"),
    path("showroom/", views.showroom, name="showroom"),
    path("showroom/<int:pk>/left/", views.showroom_left, name="showroom_left"),
    path("conflicts/", manager_views.conflicts, name="conflicts"),
    path("conflicts/<int:pk>/", manager_views.conflict_decide, name="conflict_decide"),
    path("funnel/", manager_views.funnel, name="funnel"),
    path("funnel/export/", manager_views.funnel_export, name="funnel_export"),
    path("duty/", manager_views.duty, name="duty"),
    path("settings/", manager_views.settings_page, name="settings"),
]
