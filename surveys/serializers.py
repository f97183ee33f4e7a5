"""API shapes of surveys."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from crm.api.serializers import DateRangeQuerySerializer, StrictInput
from surveys.models import Answer, Invitation, Response, SurveyQuestion, SurveyTemplate, SurveyVersion


class QuestionSerializer(serializers.ModelSerializer[SurveyQuestion]):
    class Meta:
        model = SurveyQuestion
        fields = ["key", "position", "section", "kind", "text", "choices", "required"]
        read_only_fields = fields


class VersionSerializer(serializers.ModelSerializer[SurveyVersion]):
    questions = QuestionSerializer(many=True, read_only=True)

    class Meta:
        model = SurveyVersion
        fields = ["id", "number", "title", "intro", "created_at", "questions"]
        read_only_fields = fields


class TemplateSerializer(serializers.ModelSerializer[SurveyTemplate]):
    current_version = VersionSerializer(read_only=True)

    class Meta:
        model = SurveyTemplate
        fields = ["id", "code", "name", "moment", "is_active", "current_version"]
        read_only_fields = fields


class InvitationSerializer(serializers.ModelSerializer[Invitation]):
    template = serializers.IntegerField(source="version.template_id", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "customer",
            "template",
            "version",
            "version_number",
            "trigger",
            "order",
            "ticket",
            "staff",
            "channel",
            "status",
            "send_after",
            "expires_at",
            "sent_at",
            "reminded_at",
            "opened_at",
            "answered_at",
            "created_at",
        ]
        read_only_fields = fields


class InvitationCreateSerializer(StrictInput, serializers.Serializer[Any]):
    customer = serializers.IntegerField()
    template = serializers.SlugField(help_text="Template code, e.g. service.")


class AnswerSerializer(serializers.ModelSerializer[Answer]):
    key = serializers.CharField(source="question.key", read_only=True)

    class Meta:
        model = Answer
        fields = ["key", "number", "choices", "text"]
        read_only_fields = fields


class ResponseSerializer(serializers.ModelSerializer[Response]):
    answers = AnswerSerializer(many=True, read_only=True)
    template = serializers.IntegerField(source="version.template_id", read_only=True)

    class Meta:
        model = Response
        fields = [
            "id",
            "invitation",
            "customer",
            "template",
            "version",
            "staff",
            "submitted_at",
            "overall",
            "nps",
            "low_score",
            "answers",
        ]
        read_only_fields = fields


class ResultsQuerySerializer(DateRangeQuerySerializer):
    template = serializers.SlugField(required=False, help_text="Template code; all templates when absent.")
