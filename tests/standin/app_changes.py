"""Commits the tests make to the example app's working copy: what a team's daily update looks like."""
from pathlib import Path


def add_field(app: Path, name: str, migration: str, after: str) -> None:
    """A CharField on Defect and its migration `migration`, which follows migration `after`."""
    models = app / "backend/quality/models.py"
    models.write_text(models.read_text().replace(
        "    created_at = models.DateTimeField(auto_now_add=True)\n",
        "    created_at = models.DateTimeField(auto_now_add=True)\n"
        f"    {name} = models.CharField(max_length=100, blank=True, default=\"\")\n"))
    (app / f"backend/quality/migrations/{migration}.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    dependencies = [(\"quality\", \"{after}\")]\n"
        f"    operations = [migrations.AddField(model_name=\"defect\", name=\"{name}\", "
        "field=models.CharField(blank=True, default=\"\", max_length=100))]\n")


def add_owner_field_and_endpoint(app: Path) -> None:
    """A backend change with a migration (Defect.owner) and a new endpoint (/api/owners/)."""
    add_field(app, "owner", "0002_defect_owner", "0001_initial")
    views = app / "backend/quality/views.py"
    views.write_text(views.read_text() + "\n\ndef owners(request):\n"
                     "    return JsonResponse({\"owners\": sorted(set(Defect.objects.values_list(\"owner\", flat=True)))})\n")
    urls = app / "backend/quality/urls.py"
    urls.write_text(urls.read_text().replace('    path("version/"', '    path("owners/", views.owners, name="owners"),\n'
                                                                    '    path("version/"'))


def set_frontend_title(app: Path, title: str) -> None:
    """A frontend change: the home page's title."""
    page = app / "frontend/pages/index.js"
    text = page.read_text()
    start = text.index('<Layout title="') + len('<Layout title="')
    page.write_text(text[:start] + title + text[text.index('"', start):])


def set_backend_version(app: Path, version: str) -> None:
    views = app / "backend/quality/views.py"
    text = views.read_text()
    start = text.index('VERSION = "') + len('VERSION = "')
    views.write_text(text[:start] + version + text[text.index('"', start):])


def break_health(app: Path) -> None:
    """A commit that imports and starts, but whose health endpoint fails: the kind of bug only a check finds."""
    views = app / "backend/quality/views.py"
    views.write_text(views.read_text().replace("def health(request):\n",
                                               "def health(request):\n    raise RuntimeError(\"broken on purpose\")\n"))
