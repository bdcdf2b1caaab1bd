"""The API's documentation page: Swagger UI at /api/docs/, under the site's strict
Content-Security-Policy (``script-src 'self'; style-src 'self'``, config/settings.py), unchanged.

drf-spectacular's split view serves the page and, from ``/api/docs/?script=``, the script that
starts Swagger UI, so the page has no inline script; Swagger UI's own files come from the sidecar
package (``SWAGGER_UI_DIST = "SIDECAR"``), served by staticfiles from this origin; the page's inline
``<style>`` is a stylesheet (templates/api/swagger_ui.html).

/api/redoc/ only redirects here: ReDoc 2 cannot run under this policy without exceptions (inline
``<style>`` elements from styled-components, a ``blob:`` worker for search, and a logo it always
fetches from cdn.redoc.ly), and Swagger UI shows the same schema.
"""
from __future__ import annotations

from drf_spectacular.views import SpectacularSwaggerSplitView


class SwaggerDocsView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"
