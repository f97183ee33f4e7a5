"""TEMPORARY: replaced by the manager pages (being written)."""
from django.http import HttpResponse

def lead_export(request, *a, **k):
    return HttpResponse('')

def pool(request, *a, **k):
    return HttpResponse('')

def lead_assign(request, *a, **k):
    return HttpResponse('')

def conflicts(request, *a, **k):
    return HttpResponse('')

def conflict_decide(request, *a, **k):
    return HttpResponse('')

def funnel(request, *a, **k):
    return HttpResponse('')

def funnel_export(request, *a, **k):
    return HttpResponse('')

def duty(request, *a, **k):
    return HttpResponse('')

def settings_page(request, *a, **k):
    return HttpResponse('')
