"""ASGI entry point. Bodies are size-checked before Django spools them (config/middleware.py)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from config.middleware import body_limit_asgi  # noqa: E402  (after settings are configured)

application = body_limit_asgi(django_application)
