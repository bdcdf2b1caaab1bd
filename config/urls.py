from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views import defaults
from django.views.decorators.http import require_safe


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    """``/favicon.ico``, which browsers fetch on pages that name no icon (the Django admin, say):
    a redirect to the site's icon (static, so its hashed name; not permanent, as that name changes)."""
    return HttpResponseRedirect(static("arbiter/favicon-32.png"))


def not_found(request, exception):
    """404: a path under ``/api/`` is answered as the API answers (JSON ``{"detail": "Not found."}``,
    as DRF's own 404s), so an API client never has to parse an HTML page; other paths get the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


handler404 = not_found

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("training.api.urls")),
    path("api/", include("feedback.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("", include("training.urls")),
    path("", include("feedback.urls")),
]
