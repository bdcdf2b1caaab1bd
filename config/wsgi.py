"""WSGI entry point (gunicorn config.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Import the URL configuration, and with it every view, DRF and the API schema modules, now rather
# than in the first request each worker serves: that was about a second of CPU landing on some
# annotator's first claim or vote after every start (bench/annotate_load.py's py-spy profile).
get_resolver().url_patterns
