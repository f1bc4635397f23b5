import json

from django.contrib.auth import authenticate, login
from django.http import JsonResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from .models import Defect

# Tests change this to see a deploy go live (GET /api/version/).
VERSION = "1"


@require_GET
def health(request):
    return JsonResponse({"status": "ok"})


@require_GET
def version(request):
    return JsonResponse({"version": VERSION})


@require_GET
def defect_list(request):
    fields = ("id", "title", "part_number", "severity", "status", "created_at")
    return JsonResponse(list(Defect.objects.values(*fields)), safe=False)


@require_GET
@ensure_csrf_cookie
def me(request):
    """Who is logged in; also sets the csrftoken cookie the login POST needs."""
    user = request.user
    return JsonResponse({"username": user.get_username() if user.is_authenticated else None})


@require_POST
def login_view(request):
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "invalid JSON"}, status=400)
    user = authenticate(request, username=data.get("username"), password=data.get("password"))
    if user is None:
        return JsonResponse({"error": "invalid username or password"}, status=401)
    login(request, user)
    return JsonResponse({"username": user.get_username()})
