"""Websocket edge security: JWT from the `token` query parameter (API clients) or else the
session cookie (the dashboards' pages), and an Origin allow-list."""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from tradingsite.security.jwt import RevocationCheckingJWTAuthentication


def user_for_token(raw: str) -> Any:
    """The active user a valid, unrevoked access token belongs to; anonymous otherwise."""
    auth = RevocationCheckingJWTAuthentication()
    try:
        return auth.get_user(auth.get_validated_token(raw.encode()))
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AnonymousUser()


class JWTQueryAuthMiddleware(BaseMiddleware):
    """Browsers cannot set headers on a websocket, so the access token comes as `?token=`.
    A token, when given, decides alone (an invalid one is anonymous); without one, the user of
    the session cookie stands (set by the session middleware outside this one)."""

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        token = parse_qs(scope.get("query_string", b"").decode("latin1")).get("token", [""])[-1]
        if token:
            scope["user"] = await database_sync_to_async(user_for_token)(token)
            scope["stream_token"] = token  # kept for revalidation while connected
        elif "user" not in scope:
            scope["user"] = AnonymousUser()
        return await super().__call__(scope, receive, send)


def scope_still_authorized(scope: dict) -> bool:
    """Whether the credential a socket connected with still holds: its token is unexpired and
    unrevoked (for a token), or its session still exists for the same user (for a cookie), and
    the user is still active. Revoking or logging out therefore ends open sockets too."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return False
    token = scope.get("stream_token")
    if token:
        return user_for_token(token).pk == user.pk
    session = scope.get("session")
    key = getattr(session, "session_key", None)
    if not key:
        return False
    # A fresh read of the store, not the connection's cached copy (logout deletes the session).
    current = import_module(settings.SESSION_ENGINE).SessionStore(key)
    if current.get(SESSION_KEY) != str(user.pk):
        return False
    return get_user_model()._default_manager.filter(pk=user.pk, is_active=True).exists()


class BrowserOriginValidator(OriginValidator):
    """Refuses a foreign Origin (cross-site websocket hijacking). A client that sends no Origin
    is not a browser, so it cannot be hijacked; it still needs a valid token."""

    def valid_origin(self, parsed_origin: Any) -> bool:
        return parsed_origin is None or super().valid_origin(parsed_origin)


def stream_edge(application: Any) -> Any:
    """Origin check first: a session cookie rides along on any browser's handshake, so a page
    of a foreign origin must never get this far (cross-site websocket hijacking)."""
    allowed = [*settings.ALLOWED_ORIGINS, *settings.TRUSTED_HOSTS]
    return BrowserOriginValidator(AuthMiddlewareStack(JWTQueryAuthMiddleware(application)), allowed)
