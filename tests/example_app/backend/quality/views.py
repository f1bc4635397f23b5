from django.db import DatabaseError, connection
from django.db.migrations.recorder import MigrationRecorder
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .models import Defect

# Bumped by the deployment tool's tests in later commits, to see a deploy go live.
VERSION = "1"


@require_GET
def health(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        migrations = MigrationRecorder(connection).migration_qs.count()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": "error", "detail": str(exc)}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "migrations": migrations})


@require_GET
def defects(request):
    items = [
        {
            "id": d.id,
            "title": d.title,
            "severity": d.severity,
            "status": d.status,
            "created_at": d.created_at.isoformat(),
        }
        for d in Defect.objects.all()
    ]
    return JsonResponse(items, safe=False)


@require_GET
def version(request):
    return JsonResponse({"version": VERSION})
