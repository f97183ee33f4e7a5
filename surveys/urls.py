from django.urls import path

from surveys import views

app_name = "surveys"

urlpatterns = [
    path("", views.results, name="results"),
    path("responses/<int:pk>/", views.response_detail, name="response"),
    path("templates/", views.template_list, name="templates"),
    path("templates/<int:pk>/", views.template_detail, name="template"),
    path("templates/<int:pk>/edit/", views.template_edit, name="template_edit"),
    path("invitations/", views.invitations, name="invitations"),
    path("invitations/send/", views.send, name="send"),
    path("invitations/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("settings/", views.settings_page, name="settings"),
]
