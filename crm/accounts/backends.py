from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q
from django.http import HttpRequest


class EmailOrUsernameBackend(ModelBackend):
    """Staff sign in with their email (or username); service accounts never sign in."""

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> AbstractBaseUser | None:
        if not username or not password:
            return None
        user_model = get_user_model()
        user = (
            user_model.objects.filter(Q(username__iexact=username) | Q(email__iexact=username)).order_by("pk").first()
        )
        if user is None:
            user_model().set_password(password)  # same work either way: no timing oracle for user existence
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
