from django.contrib import admin

from crm.tenancy.admin import TenantScopedAdmin
from customers.models import Customer, Order, Vehicle


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin):
    list_display = ["name", "lifecycle_stage", "relationship_class", "owner", "created_at"]
    list_filter = ["lifecycle_stage", "relationship_class", "list_flag"]
    search_fields = ["name", "=mobile", "=external_id"]
    raw_id_fields = ["owner"]


@admin.register(Vehicle)
class VehicleAdmin(TenantScopedAdmin):
    list_display = ["plate", "vin", "brand", "series", "purchase_date"]
    search_fields = ["=plate", "=vin"]
    raw_id_fields = ["customer"]


@admin.register(Order)
class OrderAdmin(TenantScopedAdmin):
    list_display = ["ordered_on", "kind", "status", "amount", "customer"]
    list_filter = ["kind", "status"]
    raw_id_fields = ["customer", "vehicle", "staff"]
