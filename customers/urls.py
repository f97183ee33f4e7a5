from django.urls import path

from customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/reveal/<str:field>/", views.customer_reveal, name="reveal"),
]
