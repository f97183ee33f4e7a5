from django.urls import path

from complaints import views

app_name = "complaints"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("new/", views.ticket_new, name="new"),
    path("metrics/", views.metrics, name="metrics"),
    path("settings/", views.settings_page, name="settings"),
    path("<int:pk>/", views.ticket_detail, name="detail"),
    path("<int:pk>/advance/", views.ticket_advance, name="advance"),
    path("<int:pk>/note/", views.ticket_note, name="note"),
    path("<int:pk>/assign/", views.ticket_assign, name="assign"),
    path("<int:pk>/take/", views.ticket_take, name="take"),
    path("<int:pk>/pause/", views.ticket_pause, name="pause"),
    path("<int:pk>/resume/", views.ticket_resume, name="resume"),
    path("<int:pk>/reopen/", views.ticket_reopen, name="reopen"),
    path("<int:pk>/watch/", views.ticket_watch, name="watch"),
    path("<int:pk>/reveal/", views.ticket_reveal, name="reveal"),
    path("<int:pk>/attach/", views.ticket_attach, name="attach"),
    path("<int:pk>/attachments/<int:attachment_id>/", views.attachment_download, name="attachment"),
]
