"""Serializers the API areas share."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class DateRangeQuerySerializer(serializers.Serializer[Any]):
    """?start=&end= of a figures endpoint (dates in the dealership's zone, both included)."""

    start = serializers.DateField()
    end = serializers.DateField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": ["The end is before the start."]})
        return attrs
