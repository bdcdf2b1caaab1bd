"""Admin page for model servers: the list (with the checkpoints each serves) and a form that adds
one. A plain POST; errors show next to their fields (400) and nothing is saved. The page shows the
NAME of a server's key variable, never a key. Changes to a server: the Django admin. A
checkpoint's server: ``checkpoint_server`` (a form on the checkpoint's page), which also lets a
loop round waiting for that checkpoint's server go on."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from training.views import _require_run_jobs

from . import selectors, services
from .forms import ModelServerForm
from .models import ModelServer


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


@login_required
@require_http_methods(["POST"])
def checkpoint_server(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: name the model server that serves a policy checkpoint (``server``: a server's name,
    empty for none). Back to the checkpoint's page with a message; an unknown server or a reward
    model is said there and nothing changes."""
    _require_run_jobs(request)
    from training.models import Checkpoint

    checkpoint = get_object_or_404(Checkpoint, pk=pk)
    name = request.POST.get("server", "").strip()
    server = ModelServer.objects.filter(name=name).first() if name else None
    if name and server is None:
        messages.error(request, f"No model server named {name!r}; nothing changed.")
        return redirect("manage-checkpoint-detail", pk=pk)
    try:
        services.checkpoint_server_set(checkpoint=checkpoint, server=server)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{checkpoint.name} is served by {server.name}." if server else f"{checkpoint.name} has no model server now.")
    return redirect("manage-checkpoint-detail", pk=pk)
