"""Serializers the API areas share."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.core.period import period_errors


class DateRangeQuerySerializer(serializers.Serializer[Any]):
    """?start=&end= of a figures endpoint (dates in the dealership's zone, both included)."""

    start = serializers.DateField()
    end = serializers.DateField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors = period_errors(attrs["start"], attrs["end"])
        if errors:
            raise serializers.ValidationError({name: [message] for name, message in errors.items()})
        return attrs
