"""JWT authentication (simplejwt, signed with JWT_SECRET) with revocation and atomic rotation.

simplejwt's blacklist covers refresh tokens only and its rotation is check-then-act (two parallel
refreshes of one token can both succeed; reliability.md §1.3). Here an access token can be revoked
by its jti, and a refresh token is consumed by an INSERT that a unique constraint fences.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Exists
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token

from tradingsite.models import RevokedToken
from tradingsite.security.authdb import auth_connection

logger = logging.getLogger(__name__)


class TokenAlreadyUsedError(Exception):
    """The refresh token was consumed (rotated or revoked) before."""


# One answer for every refused token: which check failed (signature, algorithm, expiry, type,
# revocation, user) is for the logs, not for the caller probing them. A plain string, so the
# MLflow API's error shape carries it as is; the API adds `"code": "token_not_valid"`.
GENERIC_TOKEN_ERROR = "Token is invalid or expired"


class GenericInvalidToken(InvalidToken):
    """InvalidToken (callers catch that) whose detail is the plain generic string: simplejwt's
    own InvalidToken always turns its detail into a dict."""

    def __init__(self) -> None:
        AuthenticationFailed.__init__(self, GENERIC_TOKEN_ERROR, InvalidToken.default_code)


def invalid_token() -> InvalidToken:
    return GenericInvalidToken()


class RevocationCheckingJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication plus a check of the revoked-jti table on every request.

    The user and the revocation check are one query (the user row annotated with whether the
    token's jti is revoked): the database stays the authority, at one round trip per request.
    Every refusal is the same generic 401 (GENERIC_TOKEN_ERROR); the reason is logged.
    """

    def authenticate(self, request: Any) -> tuple[AbstractBaseUser, Token] | None:
        try:
            return super().authenticate(request)
        except AuthenticationFailed as exc:
            logger.info("bearer token refused: %s", _reason(exc))
            raise invalid_token() from None

    def get_user(self, validated_token: Token) -> AbstractBaseUser:
        jti = str(validated_token.get(api_settings.JTI_CLAIM, ""))
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        if not jti or user_id is None:
            raise InvalidToken("token without jti or user id")
        user = _user_with_revocation(self.user_model, user_id=user_id, jti=jti)
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if user.token_revoked:
            raise InvalidToken("token revoked")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user


def _reason(exc: AuthenticationFailed) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        messages = detail.get("messages") or []
        texts = [str(m.get("message", "")) for m in messages if isinstance(m, dict)]
        return "; ".join(texts) or str(detail.get("detail", ""))
    return str(detail)


def _user_with_revocation(user_model: Any, *, user_id: Any, jti: str) -> Any:
    """The token's user with `token_revoked` set, in one round trip to the database."""
    if user_model._meta.pk.name == api_settings.USER_ID_FIELD and auth_connection.usable():
        found = auth_connection.user_and_revoked(user_id=user_id, jti=jti)
        if found is not None:
            user, revoked = found
            if user is not None:
                user.token_revoked = revoked
            return user
    return (
        user_model.objects.annotate(token_revoked=Exists(RevokedToken.objects.filter(jti=jti)))
        .filter(**{api_settings.USER_ID_FIELD: user_id})
        .first()
    )


def _expiry(token: Token) -> datetime:
    return datetime.fromtimestamp(int(token["exp"]), tz=UTC)


def access_token_revoke(*, token: Token, user: AbstractBaseUser | None) -> None:
    """Revoke an access token until it expires; revoking twice is harmless."""
    RevokedToken.objects.get_or_create(
        jti=str(token[api_settings.JTI_CLAIM]),
        defaults={"token_type": "access", "user": user, "expires_at": _expiry(token)},
    )


@transaction.atomic
def refresh_token_consume(*, token: RefreshToken) -> None:
    """Blacklist `token` exactly once; a second consumer gets TokenAlreadyUsedError."""
    jti = str(token[api_settings.JTI_CLAIM])
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=jti,
        defaults={
            "token": str(token),
            "expires_at": _expiry(token),
            "user_id": token.get(api_settings.USER_ID_CLAIM),
        },
    )
    try:
        with transaction.atomic():  # savepoint: the IntegrityError must not poison the outer block
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError as exc:  # BlacklistedToken.token is one-to-one: the fence
        raise TokenAlreadyUsedError(jti) from exc


def refresh_token_rotate(*, raw_refresh: str) -> dict[str, str]:
    """Consume `raw_refresh` and issue a new access + refresh pair for its (active) user."""
    from rest_framework_simplejwt.exceptions import TokenError

    try:
        refresh = RefreshToken(raw_refresh)  # signature, expiry, type and blacklist
    except TokenError as exc:
        raise invalid_token() from exc
    user = _active_user(refresh)
    try:
        refresh_token_consume(token=refresh)
    except TokenAlreadyUsedError as exc:
        raise invalid_token() from exc
    new_refresh = RefreshToken.for_user(user)
    return {"access": str(new_refresh.access_token), "refresh": str(new_refresh)}


def _active_user(token: Token) -> Any:
    user_id = token.get(api_settings.USER_ID_CLAIM)
    user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
    if user is None or not user.is_active:
        raise invalid_token()
    return user


def refresh_token_revoke(*, raw_refresh: str, user: AbstractBaseUser) -> None:
    """Revoke the caller's own refresh token; someone else's is refused."""
    from rest_framework_simplejwt.exceptions import TokenError

    try:
        refresh = RefreshToken(raw_refresh)
    except TokenError as exc:
        raise InvalidToken({"detail": "refresh: token is invalid, expired or revoked"}) from exc
    if str(refresh.get(api_settings.USER_ID_CLAIM)) != str(user.pk):
        raise InvalidToken({"detail": "refresh: token belongs to another user"})
    with contextlib.suppress(TokenAlreadyUsedError):  # revoking twice is harmless
        refresh_token_consume(token=refresh)
