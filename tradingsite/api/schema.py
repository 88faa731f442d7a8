"""OpenAPI description of our authentication (imported in TradingsiteConfig.ready)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class RevocationCheckingJWTScheme(SimpleJWTScheme):
    target_class = "tradingsite.security.jwt.RevocationCheckingJWTAuthentication"
    name = "jwtAuth"
