"""Serializers of the kernel's API: notifications and the caller's notification preferences."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.api.serializers import StrictInput
from crm.core.models import DigestItem, Notification
from crm.core.notifications import kind_choices


class DigestItemSerializer(serializers.ModelSerializer[DigestItem]):
    class Meta:
        model = DigestItem
        fields = ["title", "url", "created_at"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer[Notification]):
    unread = serializers.SerializerMethodField()
    items = DigestItemSerializer(many=True, read_only=True, help_text="A digest's events, oldest first; else empty.")

    class Meta:
        model = Notification
        fields = [
            "id",
            "kind",
            "title",
            "body",
            "url",
            "urgent",
            "digest_date",
            "item_count",
            "items",
            "created_at",
            "read_at",
            "unread",
        ]
        read_only_fields = fields

    def get_unread(self, notification: Notification) -> bool:
        return notification.read_at is None


class NotificationReadAllSerializer(StrictInput, serializers.Serializer[Any]):
    kind = serializers.ChoiceField(
        choices=[], required=False, allow_blank=True, help_text="Only this kind; blank or absent: all."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind = self.fields["kind"]
        assert isinstance(kind, serializers.ChoiceField)
        kind.choices = kind_choices()  # the kinds registered when the app started


class MarkedSerializer(serializers.Serializer[Any]):
    marked = serializers.IntegerField(help_text="How many notifications were marked read.")


class NotificationKindSerializer(serializers.Serializer[Any]):
    kind = serializers.CharField()
    name = serializers.CharField(source="label", help_text="What staff call the kind, in the caller's language.")
    urgent = serializers.BooleanField(help_text="First while unread, never digested, cannot be turned off.")
    digest = serializers.BooleanField(help_text="Delivered as one daily digest per recipient.")
    enabled = serializers.BooleanField(help_text="Whether the caller gets this kind.")


class NotificationPreferencesSerializer(StrictInput, serializers.Serializer[Any]):
    turned_off = serializers.ListField(
        child=serializers.CharField(max_length=40),
        allow_empty=True,
        help_text="The kinds the caller does not want (replaces the earlier choice); urgent kinds are refused.",
    )
