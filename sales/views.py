"""TEMPORARY: replaced by the staff pages (being written)."""

from django.http import HttpResponse


def today(request, *a, **k):
    return HttpResponse("")


def lead_list(request, *a, **k):
    return HttpResponse("")




def lead_new(request, *a, **k):
    return HttpResponse("")




def lead_detail(request, *a, **k):
    return HttpResponse("")


def lead_edit(request, *a, **k):
    return HttpResponse("")


def lead_contact(request, *a, **k):
    return HttpResponse("")


def lead_invite(request, *a, **k):
    return HttpResponse("")




def lead_take(request, *a, **k):
    return HttpResponse("")


def test_drive_new(request, *a, **k):
    return HttpResponse("")


def quote_new(request, *a, **k):
    return HttpResponse("")


def lead_order(request, *a, **k):
    return HttpResponse("")


def lead_deliver(request, *a, **k):
    return HttpResponse("")


def lead_defeat(request, *a, **k):
    return HttpResponse("")


def lead_defeat_decide(request, *a, **k):
    return HttpResponse("")


def lead_reopen(request, *a, **k):
    return HttpResponse("")


def lead_of_customer(request, *a, **k):
    return HttpResponse("")


def quote_print(request, *a, **k):
    return HttpResponse("")


def test_drives(request, *a, **k):
    return HttpResponse("")


def test_drive_detail(request, *a, **k):
    return HttpResponse("")


def test_drive_agreement(request, *a, **k):
    return HttpResponse("")


def showroom(request, *a, **k):
    return HttpResponse("")


def showroom_left(request, *a, **k):
    return HttpResponse("")












