from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.customer_create, name="create"),
    path("bulk/", views.customer_bulk, name="bulk"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/", views.customer_edit, name="edit"),
    path("<int:pk>/contacts/", views.touchpoint_log, name="log_touchpoint"),
    path("<int:pk>/list/", views.customer_list_flag, name="list_flag"),
    path("<int:pk>/vehicles/", views.vehicle_add, name="add_vehicle"),
    path("<int:pk>/vehicles/<int:vehicle_pk>/mileage/", views.mileage_add, name="add_mileage"),
    path("<int:pk>/merge/", views.customer_merge, name="merge"),
    path("<int:pk>/reveal/<str:field>/", views.customer_reveal, name="reveal"),
]
