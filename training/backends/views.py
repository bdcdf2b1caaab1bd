"""Admin page for model servers: the list (with the checkpoints each serves) and a form that adds
one. A plain POST; errors show next to their fields (400) and nothing is saved. The page shows the
NAME of a server's key variable, never a key. Changes and a checkpoint's server: the Django admin."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from training.views import _require_run_jobs

from . import selectors, services
from .forms import ModelServerForm


@login_required
@require_http_methods(["GET", "POST"])
def server_list(request: HttpRequest) -> HttpResponse:
    """Admins: every model server; POST adds one."""
    _require_run_jobs(request)
    form = ModelServerForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                server = services.model_server_save(**form.settings())
            except ValidationError as error:
                form.add_service_errors(error.message_dict)
            else:
                messages.success(request, f"Model server {server.name} added.")
                return redirect("manage-servers")
    servers = selectors.model_server_list().prefetch_related("checkpoints")
    return render(request, "training/servers.html", {"servers": servers, "form": form}, status=status)
