"""app-check: file texts and git's lists in, findings (result, what was seen with file:line, the change) out; then
the command line on a copy of the example app, as it is and with each problem put in."""
import json
import re
import shutil
import subprocess
from dataclasses import replace

import pytest

from tasks.core import app_check as ac
from tasks.core import backend_plan as plan
from tasks.core.checks import FAIL, OK, READS_ENV, WARN
from tasks.core.settings import defaults, resolve
from tests.conftest import REPO, assert_one_line_error, fab, run_tool

LAYOUT = ac.Layout.of(resolve([], defaults(), None))


def by_check(findings):
    found = {}
    for f in findings:
        found.setdefault(f.check, f)
    return found


def settings_rows(text, layout=LAYOUT, **modules):
    files = {"proj.settings": ("backend/proj/settings.py", text),
             **{name: (f"backend/{name.replace('.', '/')}.py", body) for name, body in modules.items()}}
    return by_check(ac.settings_findings(ac.parse_settings("proj.settings", files.get), layout))


STARTPROJECT = """\
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = 'django-insecure-k9#x$0abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz'
DEBUG = True
ALLOWED_HOSTS = []
DATABASES = {
    'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': BASE_DIR / 'db.sqlite3'}
}
STATIC_URL = 'static/'
"""

FROM_ENV = """\
import os
from pathlib import Path
BASE_DIR = Path(__file__).resolve().parent.parent

def env_list(name, default=""):
    return [item for item in os.environ.get(name, default).split(",") if item]

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = os.environ.get("DEBUG", "") == "1"
_hosts = os.getenv("ALLOWED_HOSTS", "")
ALLOWED_HOSTS = _hosts.split(",")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CSRF_TRUSTED_ORIGINS = CORS_ALLOWED_ORIGINS
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("DATABASE_PATH")}}
STATIC_ROOT = os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles")
"""


def test_django_startproject_settings_fail_each_with_the_line_to_write():
    rows = settings_rows(STARTPROJECT)
    assert {name: rows[f"settings: {name}"].result for name in ac.SETTINGS} == {
        "SECRET_KEY": FAIL, "DEBUG": FAIL, "ALLOWED_HOSTS": FAIL, "CORS_ALLOWED_ORIGINS": WARN,
        "CSRF_TRUSTED_ORIGINS": WARN, "DATABASES": FAIL, "STATIC_ROOT": FAIL}
    secret = rows["settings: SECRET_KEY"]
    assert secret.saw.startswith("backend/proj/settings.py:3: SECRET_KEY = '...'") and "k9#x" not in secret.saw
    assert secret.fix.startswith('write: SECRET_KEY = os.environ["SECRET_KEY"]')
    assert rows["settings: DEBUG"].fix.startswith('write: DEBUG = os.environ.get("DEBUG") == "1"')
    assert rows["settings: ALLOWED_HOSTS"].fix.startswith(
        'write: ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "").split(",")')
    assert rows["settings: DATABASES"].saw.startswith("backend/proj/settings.py:6: DATABASES = {")
    assert 'os.environ.get("DATABASE_PATH", BASE_DIR / "db.sqlite3")' in rows["settings: DATABASES"].fix
    assert "qms.backend.database" in rows["settings: DATABASES"].fix
    assert rows["settings: CSRF_TRUSTED_ORIGINS"].fix.startswith(
        'add: CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]')
    assert rows["settings: STATIC_ROOT"].saw.startswith("not set in backend/proj/settings.py: collectstatic")
    assert 'STATIC_ROOT = os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles")' in rows["settings: STATIC_ROOT"].fix
    key = rows["settings: committed key"]
    assert key.result == FAIL and key.saw.startswith("backend/proj/settings.py:3: a django-insecure- key")
    assert "qms.secrets_file" in key.fix


def test_settings_that_read_the_environment_pass_through_helpers_and_names():
    rows = settings_rows(FROM_ENV)
    assert {f.result for f in rows.values()} == {OK}, rows
    assert rows["settings: ALLOWED_HOSTS"].saw == "backend/proj/settings.py:11: reads ALLOWED_HOSTS"
    assert rows["settings: CORS_ALLOWED_ORIGINS"].saw.endswith("reads CORS_ALLOWED_ORIGINS")
    assert rows["settings: DATABASES"].saw.endswith("reads DATABASE_PATH")


def test_the_replacement_lines_read_exactly_the_variables_the_tool_writes():
    s = resolve([], {**defaults(), "domains": ["qms.example.com"]}, "conf/production.yaml")
    s.secrets = {"SECRET_KEY": "k"}
    written = set(plan.parse_env(plan.render_env(s)))
    # STATIC_ROOT differs per release: the unit and manage.py set it, not the shared .env
    assert written | {"STATIC_ROOT"} == set(ac.TOOL_ENV)
    assert "Environment=STATIC_ROOT=" in plan.render_units(s)["service"]
    lines = [READS_ENV[key] for key, *_ in ac.SETTINGS.values()]
    assert {name for line in lines for name in re.findall(r'os\.environ(?:\.get\(|\[)"(\w+)"', line)} == written | {"STATIC_ROOT"}
    # written as they say (DATABASE's is an entry of DATABASES["default"]), every setting then reads the .env
    entry = READS_ENV["DATABASE"].split(" in ")[0]
    text = "\n".join(["import os", "BASE_DIR = None", *(line for line in lines if not line.startswith('"')),
                      f"DATABASES = {{'default': {{{entry}}}}}"])
    assert {f.result for f in settings_rows(text).values()} == {OK}


DEV_FALLBACK = ('import os\nSECRET_KEY = os.environ.get("SECRET_KEY")\nif not SECRET_KEY:\n'
                '    SECRET_KEY = "django-insecure-dev"\n')


@pytest.mark.parametrize("text, check, result, fragment", [
    ('import environ\nenv = environ.Env()\nSECRET_KEY = env("SECRET_KEY")\nDEBUG = env.bool("DEBUG", default=False)\n',
     "settings: DEBUG", OK, "reads DEBUG"),
    ('import environ\nenv = environ.Env()\nDATABASES = {"default": env.db()}\n',
     "settings: DATABASES", FAIL, "reads DATABASE_URL, which the server's .env does not set"),
    ('from decouple import config, Csv\nALLOWED_HOSTS = config("ALLOWED_HOSTS", cast=Csv())\n',
     "settings: ALLOWED_HOSTS", OK, "reads ALLOWED_HOSTS"),
    ('import dj_database_url\nDATABASES = {"default": dj_database_url.config(conn_max_age=600)}\n',
     "settings: DATABASES", FAIL, "reads DATABASE_URL"),
    ('import os\nSECRET_KEY = os.environ["DJANGO_SECRET_KEY"]\n',
     "settings: SECRET_KEY", FAIL, "settings.py:2: reads DJANGO_SECRET_KEY, which the server's .env does not set"),
    ('import os\nDEBUG = os.environ.get("DEBUG") == "1"\nDEBUG = True\n', "settings: DEBUG", FAIL,
     "settings.py:3: DEBUG = True: a literal"),
    ("DEBUG = False\n", "settings: DEBUG", WARN, "DEBUG = False: a literal"),
    ('import os\nDEBUG = True\nif "DEBUG" in os.environ:\n    DEBUG = os.environ["DEBUG"] == "1"\n', "settings: DEBUG",
     OK, "settings.py:4: reads DEBUG"),
    ("X = 1\n", "settings: DEBUG", OK, "Django's default, False"),
    ('import os\nSECRET_KEY = os.environ.get("SECRET_KEY", "django-insecure-fallback")\n',
     "settings: committed key", FAIL, "settings.py:2: a django-insecure- key in git"),
    (DEV_FALLBACK, "settings: SECRET_KEY", OK, "settings.py:2: reads SECRET_KEY"),
    (DEV_FALLBACK, "settings: committed key", WARN, "settings.py:4: a django-insecure- key in git, inside a condition"),
    ("CORS_ALLOW_ALL_ORIGINS = True\n", "settings: CORS_ALLOW_ALL_ORIGINS", FAIL, "settings.py:1"),
    ("DEBUG = 0\nif DEBUG:\n    CORS_ORIGIN_ALLOW_ALL = True\n", "settings: CORS_ORIGIN_ALLOW_ALL", WARN,
     "inside a condition"),
    ('import os\nDATABASES = {"default": {"NAME": "x"}}\nDATABASES["default"]["NAME"] = os.environ["DATABASE_PATH"]\n',
     "settings: DATABASES", OK, "reads DATABASE_PATH"),
])
def test_how_each_setting_reads_the_environment(text, check, result, fragment):
    found = settings_rows(text)[check]
    assert found.result == result and fragment in found.saw, found


def test_a_variable_the_settings_give_the_env_reads_is_known():
    text = 'import environ\nenv = environ.Env()\nDATABASES = {"default": env.db()}\n'
    layout = replace(LAYOUT, backend_env={"DATABASE_URL": "sqlite:////home/ubuntu/QMS/backend/db.sqlite3"})
    assert settings_rows(text, layout)["settings: DATABASES"].result == OK


def test_the_apps_keys_in_the_secrets_file_are_known_the_tools_own_are_not():
    s = resolve([], defaults(), None)
    s.secrets = {"DJANGO_SECRET_KEY": "k" * 40, "AWS_SECRET_ACCESS_KEY": "a" * 40}
    text = 'import os\nSECRET_KEY = os.environ["DJANGO_SECRET_KEY"]\n'
    assert settings_rows(text, ac.Layout.of(s))["settings: SECRET_KEY"].result == OK
    text = 'import os\nSECRET_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]\n'
    assert settings_rows(text, ac.Layout.of(s))["settings: SECRET_KEY"].result == FAIL


def test_star_imports_of_the_apps_own_modules_are_followed_others_named():
    rows = settings_rows("from .base import *\nDEBUG = False\n", **{"proj.base": FROM_ENV})
    assert rows["settings: SECRET_KEY"].saw == "backend/proj/base.py:8: reads SECRET_KEY"
    unread = settings_rows("from local_settings import *\n")["settings: SECRET_KEY"]
    assert unread.result == WARN and "unless local_settings (not read) sets it" in unread.saw


def test_a_settings_syntax_error_is_named_with_its_line():
    parsed = ac.parse_settings("s", {"s": ("backend/s.py", "DEBUG = (\n")}.get)
    assert parsed.error.startswith("backend/s.py:1: ")


# -- the frontend ----------------------------------------------------------------------------------------------
def config_rows(text, layout=LAYOUT, label="frontend/next.config.mjs"):
    return ac.next_config_findings(label, ac.strip_js_comments(text) if text is not None else "", layout)


def test_next_config_output_export():
    ok = config_rows("const nextConfig = {\n  output: 'export',\n};\nexport default nextConfig;\n")
    assert [(f.result, f.saw) for f in ok] == [(OK, "frontend/next.config.mjs:2: output: 'export'")]
    missing = config_rows("/** @type */\nconst nextConfig = {\n  // output: 'export',\n  reactStrictMode: true,\n};\n")
    assert missing[0].result == FAIL and "no output: 'export'" in missing[0].saw
    assert missing[0].fix.startswith("add the line  output: 'export',  to the config object in "
                                     "frontend/next.config.mjs, after line 2: const nextConfig = {")
    other = config_rows("module.exports = {\n  output: 'standalone',\n}\n", label="frontend/next.config.js")
    assert other[0].saw == "frontend/next.config.js:2: output: 'standalone'"
    assert other[0].fix.startswith("frontend/next.config.js:2: write output: 'export'")
    none = ac.next_config_findings(None, "", LAYOUT)[0]
    assert none.result == FAIL and "const nextConfig = { output: 'export' };" in none.fix


def test_next_config_dist_dir_and_rewrites():
    rows = by_check(config_rows("module.exports = {\n  output: 'export',\n  distDir: 'build',\n"
                                "  async rewrites() { return [] },\n}\n"))
    assert rows["frontend: export folder"].fix == "set qms.frontend.out: build"
    unused = rows["frontend: next.config"]
    assert unused.result == WARN and ":4: rewrites do nothing" in unused.saw


@pytest.mark.parametrize("label, text, fragment", [
    ("frontend/pages/api/hello.js", "export default function handler(req, res) {}", "an API route (pages/api/)"),
    ("frontend/src/app/api/items/route.ts", "export async function POST() {}", "a route handler (app/api/)"),
    ("frontend/middleware.ts", "export function middleware() {}", "middleware runs on a Node server"),
    ("frontend/pages/x.js", "\n\nexport async function getServerSideProps() {}", "pages/x.js:3: getServerSideProps"),
    ("frontend/app/a.js", "'use server'\nexport async function save() {}", "app/a.js:1: a Server Action"),
    ("frontend/app/b.js", "import { cookies } from 'next/headers'", "next/headers"),
    ("frontend/pages/[id].js", "export function getStaticPaths() { return { paths: [], fallback: 'blocking' } }",
     "fallback"),
    ("frontend/pages/i.js", "import Image from 'next/image'", "frontend/pages/i.js:1: next/image's default loader"),
])
def test_server_only_features_are_named_with_their_file(label, text, fragment):
    found = ac.server_feature_findings({label: ac.strip_js_comments(text)}, "frontend", "")
    assert found[0].result == FAIL and fragment in found[0].saw, found


def test_next_image_is_fine_unoptimized_and_plain_pages_pass():
    sources = {"frontend/pages/i.js": "import Image from 'next/image'"}
    assert ac.server_feature_findings(sources, "frontend", "images: { unoptimized: true }")[0].result == OK
    plain = {"frontend/pages/index.js": "// getServerSideProps is not used here\nexport default function Home() {}"}
    assert ac.server_feature_findings({k: ac.strip_js_comments(v) for k, v in plain.items()}, "frontend", "")[0] \
        .result == OK


def test_local_api_urls_with_file_and_lines_but_not_in_comments():
    text = ac.strip_js_comments("// e.g. http://localhost:8000/api\nconst a = 1;\n"
                                "export const API = 'http://127.0.0.1:8000/api';\nfetch(`http://localhost:8000/x`)\n")
    found = ac.local_url_findings({"frontend/lib/api.js": text})
    assert [(f.result, f.saw) for f in found] == [(FAIL, "frontend/lib/api.js:3,4: http://127.0.0.1:8000/api")]
    assert found[0].fix == ("read the API base from process.env.NEXT_PUBLIC_API_URL (the tool sets it at build time "
                            "from qms.frontend.api_url)")
    assert ac.local_url_findings({"a.js": "fetch('https://qms.example.com/api')"})[0].result == OK


def test_next_public_names_that_nothing_sets():
    base = {"frontend/lib/api.js": "export const API = process.env.NEXT_PUBLIC_API_BASE;\n"}
    other = ac.public_env_findings(base, {})[0]
    assert other.result == WARN and other.saw == ("reads NEXT_PUBLIC_API_BASE (frontend/lib/api.js:1), not "
                                                  "NEXT_PUBLIC_API_URL")
    assert other.fix.endswith("or set qms.frontend.build_env: {NEXT_PUBLIC_API_BASE: ...}")
    both = {"a.js": "process.env.NEXT_PUBLIC_API_URL\nprocess.env['NEXT_PUBLIC_SITE']"}
    assert ac.public_env_findings(both, {})[0].saw == ("reads NEXT_PUBLIC_SITE (a.js:2), which no setting gives the "
                                                       "build")
    assert ac.public_env_findings(both, {"NEXT_PUBLIC_SITE": "x"})[0].result == OK
    given = ac.public_env_findings(base, {"NEXT_PUBLIC_API_BASE": "https://qms.example.com/api"})[0]
    assert given.result == OK and given.saw == ("reads NEXT_PUBLIC_API_BASE (frontend/lib/api.js:1), from "
                                                "qms.frontend.build_env")
    nothing = ac.public_env_findings({"a.js": "x"}, {})[0]
    assert nothing.saw == "reads no NEXT_PUBLIC_* variable, not NEXT_PUBLIC_API_URL"


@pytest.mark.parametrize("package, locks, check, fragment", [
    ({"dependencies": {"react": "19"}}, {"package-lock.json"}, "frontend: package.json", "next is not among"),
    ({"dependencies": {"next": "15"}}, {"package-lock.json"}, "frontend: package.json", "no build script"),
    ({"dependencies": {"next": "13"}, "scripts": {"build": "next build && next export"}}, {"package-lock.json"},
     "frontend: package.json", "runs next export"),
    ({"dependencies": {"next": "15"}, "scripts": {"build": "next build"}}, {"yarn.lock"},
     "frontend: package-lock.json", "no frontend/package-lock.json (yarn.lock instead)"),
])
def test_package_json_problems(package, locks, check, fragment):
    found = by_check(ac.package_findings("frontend/package.json", json.dumps(package), locks))[check]
    assert found.result == FAIL and fragment in found.saw, found


# -- the Python project ----------------------------------------------------------------------------------------
PYPROJECT = """\
[project]
name = "x"
requires-python = "{requires}"
dependencies = [
    "django>=5.2,<6",  # the framework
    {uvicorn}
]

[project.optional-dependencies]
serve = ["uvicorn"]
"""


@pytest.mark.parametrize("requires, uvicorn, locked, expected", [
    (">=3.11", '"uvicorn[standard]>=0.30",', True,
     {"backend: Python project": OK, "backend: uvicorn": OK, "backend: requires-python": OK}),
    (">=3.12", "", False,
     {"backend: Python project": WARN, "backend: uvicorn": FAIL, "backend: requires-python": WARN}),
])
def test_pyproject_lock_uvicorn_and_requires_python(requires, uvicorn, locked, expected):
    rows = by_check(ac.project_rows("backend", PYPROJECT.format(requires=requires, uvicorn=uvicorn), [], locked))
    assert {check: f.result for check, f in rows.items()} == expected
    if locked:
        assert rows["backend: uvicorn"].saw == 'backend/pyproject.toml:6: uvicorn[standard]>=0.30'
    else:
        assert rows["backend: uvicorn"].fix == "add uvicorn to your dependencies: uv add uvicorn (in backend/)"
        assert rows["backend: Python project"].fix.startswith("uv lock in backend/")
        assert rows["backend: requires-python"].saw == ("backend/pyproject.toml: >=3.12 excludes 3.11.2 (Debian 12's, "
                                                        "the stand-in's)")


def test_requires_python_that_excludes_both_servers():
    text = PYPROJECT.format(requires=">=3.13", uvicorn='"uvicorn"')
    found = by_check(ac.project_rows("backend", text, [], True))["backend: requires-python"]
    assert "excludes 3.12.3 (Ubuntu 24.04's python3) and 3.11.2" in found.saw


def test_requirements_files_and_their_includes():
    files = {"backend/requirements.txt": "-r base.txt\nDjango==5.2  # web\n", "backend/base.txt": "uvicorn==0.30\n"}
    found = ac.requirements("backend/requirements.txt", files.get)
    assert found == [("uvicorn", "backend/base.txt:1"), ("django", "backend/requirements.txt:2")]
    rows = by_check(ac.project_rows("backend", None, found, False))
    assert rows["backend: uvicorn"].result == OK and rows["backend: uvicorn"].saw == "backend/base.txt:1"
    missing = by_check(ac.project_rows("backend", None, found[1:], False))["backend: uvicorn"]
    assert missing.fix == "add the line  uvicorn>=0.30  to backend/requirements.txt"


def test_a_project_at_the_app_root_names_the_setting(tmp_path):
    (tmp_path / "backend").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["uvicorn"]\n')
    found = ac.python_project_findings(tmp_path, LAYOUT)[0]
    assert found.result == FAIL and found.fix.startswith("set qms.backend.python_project: .")
    rows = by_check(ac.python_project_findings(tmp_path, replace(LAYOUT, python_project=".")))
    assert rows["backend: uvicorn"].result == OK and rows["backend: Python project"].result == WARN


# -- URLs ------------------------------------------------------------------------------------------------------
ROOT_URLS = """\
from django.contrib import admin
from django.urls import include, path, re_path
urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("api/", include("shop.urls")),
]
"""


def url_rows(root=ROOT_URLS, layout=LAYOUT, **modules):
    files = {"proj.urls": ("backend/proj/urls.py", root),
             **{name: (f"backend/{name.replace('.', '/')}.py", text) for name, text in modules.items()}}
    return by_check(ac.url_findings("proj.urls", files.get, layout))


def test_the_api_prefix_health_and_admin_through_includes():
    rows = url_rows(**{"shop.urls": 'urlpatterns = [path("items/", views.items),\n path("health/", views.health)]'})
    assert {f.result for f in rows.values()} == {OK}
    assert rows["urls: health"].saw == "backend/shop/urls.py:2: /api/health/ (qms.smoke.health_path)"
    nested = 'urlpatterns = [path("api/", include([re_path(r"^health/$", views.health)]))]\n' \
             'urlpatterns += [path("django-admin/", admin.site.urls)]'
    assert {f.result for f in url_rows(nested).values()} == {OK}


def test_a_health_path_without_its_slash_names_the_setting():
    rows = url_rows(**{"shop.urls": 'urlpatterns = [path("healthz", views.health)]'})
    assert rows["urls: health"].result == FAIL
    assert url_rows(**{"shop.urls": 'urlpatterns = [path("health", views.health)]'})["urls: health"].fix == \
        "set qms.smoke.health_path: health"


def test_an_endpoint_named_like_a_health_check_is_suggested():
    found = url_rows(**{"shop.urls": 'urlpatterns = [path("healthcheck/ping/", views.ping)]'})["urls: health"]
    assert found.result == FAIL and "backend/shop/urls.py:1 answers /api/healthcheck/ping/" in found.saw
    assert found.fix.startswith("set qms.smoke.health_path: healthcheck/ping/")


def test_no_health_view_shows_one():
    found = url_rows(**{"shop.urls": "urlpatterns = []"})["urls: health"]
    assert found.result == FAIL and 'return JsonResponse({"status": "ok"})' in found.fix
    assert 'in backend/proj/urls.py: path("api/health/", health)' in found.fix


def test_another_api_prefix_and_admin_name_the_settings():
    root = 'urlpatterns = [path("admin/", admin.site.urls), path("v1/", include("shop.urls"))]'
    shop = {"shop.urls": 'urlpatterns = [path("health/", views.health)]'}
    rows = url_rows(root, **shop)
    assert rows["urls: API prefix"].result == FAIL
    assert rows["urls: API prefix"].saw.endswith("nothing under /api/ (qms.backend.api_prefix); the top-level paths: "
                                                 "/v1/")
    assert rows["urls: API prefix"].fix.startswith("set qms.backend.api_prefix: /v1/, or mount the API there")
    assert rows["urls: admin"].fix.startswith("set qms.backend.admin_prefix: /admin/")
    moved = replace(LAYOUT, api_prefix="/v1/", admin_prefix="/admin/")
    assert {f.result for f in url_rows(root, moved, **shop).values()} == {OK}


def test_a_router_include_is_a_warning_not_a_guess():
    rows = url_rows('urlpatterns = [path("django-admin/", admin.site.urls), path("api/", include(router.urls))]')
    assert rows["urls: API prefix"].result == OK
    assert rows["urls: health"].result == WARN and "cannot read" in rows["urls: health"].saw


def test_no_admin_at_all_fails_with_the_line_to_add():
    found = url_rows('urlpatterns = [path("api/", include("shop.urls"))]',
                     **{"shop.urls": 'urlpatterns = [path("health/", views.health)]'})["urls: admin"]
    assert found.result == FAIL and found.fix == 'add to backend/proj/urls.py: path("django-admin/", admin.site.urls)'


# -- generated files in git ------------------------------------------------------------------------------------
def test_tracked_generated_files_get_the_exact_commands():
    kinds = ac.generated(LAYOUT)
    tracked = ["backend/manage.py", "backend/quality/__pycache__/views.cpython-312.pyc",
               "backend/quality/__pycache__/urls.cpython-312.pyc", "backend/old.pyc", "backend/db.sqlite3",
               "backend/staticfiles/admin/css/base.css", "frontend/node_modules/next/package.json",
               "frontend/.next/BUILD_ID", "frontend/out/index.html", "frontend/pages/out.js"]
    ignored = {k.sample for k in kinds if k.what not in (".next", ".venv")}
    rows = by_check(ac.tracked_findings(tracked, ignored, kinds))
    assert rows["git: __pycache__, *.pyc"].saw == "git tracks 3 file(s): backend/old.pyc, backend/quality/__pycache__"
    assert rows["git: __pycache__, *.pyc"].fix == "git rm -r --cached -- backend/old.pyc backend/quality/__pycache__"
    assert rows["git: SQLite database (qms.backend.database)"].fix == "git rm -r --cached -- backend/db.sqlite3"
    assert rows["git: static files (qms.backend.static_dir)"].fix == "git rm -r --cached -- backend/staticfiles"
    assert rows["git: node_modules"].fix == "git rm -r --cached -- frontend/node_modules"
    assert rows["git: .next"].fix == "git rm -r --cached -- frontend/.next; add to .gitignore: .next/"
    assert rows["git: the export (qms.frontend.out)"].fix == "git rm -r --cached -- frontend/out"
    assert rows["git: .venv"].fix == "add to .gitignore: .venv/" and rows["git: .venv"].result == WARN
    assert all(f.result == FAIL for check, f in rows.items() if check != "git: .venv")


def test_nothing_tracked_and_all_ignored_is_one_ok_row():
    kinds = ac.generated(LAYOUT)
    assert [f.result for f in ac.tracked_findings(["backend/manage.py"], {k.sample for k in kinds}, kinds)] == [OK]


# -- the command line ------------------------------------------------------------------------------------------
@pytest.fixture
def app(tmp_path):
    """A copy of the example app, without what npm or a build left in it."""
    copy = tmp_path / "app"
    shutil.copytree(REPO / "tests/example_app", copy,
                    ignore=shutil.ignore_patterns("node_modules", ".next", "out", ".venv", "__pycache__"))
    return copy


def results(result):
    return {row["check"]: row for row in json.loads(result.stdout)["checks"]}


def test_the_example_app_fits(app, write_conf):
    result = run_tool("inv", "app-check", "--dir", app)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"app-check: {app} fits" in result.stdout
    for check in ("frontend: output: 'export'", "settings: SECRET_KEY", "urls: health", "git: generated files"):
        assert check in result.stdout
    conf = write_conf(f"qms:\n  app_dir: {app}\n")
    found = results(fab("-f", conf, "app-check", "--json"))
    assert not [row for row in found.values() if row["result"] == FAIL], found
    assert found["git: generated files"]["result"] == WARN and "not in a git repository" in \
        found["git: generated files"]["saw"]


def edit(path, old, new):
    text = path.read_text()
    assert old in text, path
    path.write_text(text.replace(old, new))


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_each_problem_is_named_in_the_table_and_counted_in_one_error_line(app):
    edit(app / "frontend/next.config.mjs", "  output: 'export',\n", "")
    edit(app / "frontend/lib/api.js", "process.env.NEXT_PUBLIC_API_URL", "'http://localhost:8000/api'")
    (app / "frontend/pages/api").mkdir()
    (app / "frontend/pages/api/hello.js").write_text("export default function handler(req, res) {}\n")
    settings = app / "backend/backend/settings.py"
    edit(settings, 'DEBUG = env_flag("DEBUG")', "DEBUG = True")
    edit(settings, 'ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")', 'ALLOWED_HOSTS = ["*"]')
    edit(app / "backend/quality/urls.py", 'path("health/"', 'path("status/"')
    edit(app / "backend/pyproject.toml", '    "uvicorn>=0.30",\n', "")
    git(app, "init", "-q", "-b", "main")
    (app / "backend/db.sqlite3").write_bytes(b"")
    (app / "backend/quality/__pycache__").mkdir()
    (app / "backend/quality/__pycache__/views.cpython-311.pyc").write_bytes(b"")
    git(app, "add", "-f", ".")

    result = run_tool("inv", "app-check", "--dir", app)
    line = assert_one_line_error(result, str(app), "10 problem(s)", "each finding's fix says what to change")
    assert line.startswith("error: ")
    for text in ("frontend: output: 'export'", "frontend/next.config.mjs: no output: 'export'",
                 "frontend: local API URL", "frontend/lib/api.js:3: http://localhost:8000/api",
                 "frontend: server-only feature", "frontend/pages/api/hello.js",
                 "settings: DEBUG", "backend/backend/settings.py:25: DEBUG = True",
                 "settings: ALLOWED_HOSTS", "backend/backend/settings.py:37:",
                 "urls: health", "nothing answers /api/health/",
                 "backend: uvicorn", "uv add uvicorn",
                 "git: SQLite database", "git rm -r --cached -- backend/db.sqlite3",
                 "git: __pycache__, *.pyc", "backend/quality/__pycache__",
                 "git: secret files", "git holds backend/db.sqlite3 (matches *.sqlite3)"):
        assert text in result.stdout, text
    failed = [row for row in results(run_tool("inv", "app-check", "--dir", app, "--json")).values()
              if row["result"] == FAIL]
    assert len(failed) == 10, failed


def test_a_missing_frontend_is_a_warning_and_a_missing_folder_one_line(app, tmp_path):
    shutil.rmtree(app / "frontend")
    found = results(run_tool("inv", "app-check", "--dir", app, "--json"))
    assert found["frontend"]["result"] == WARN and "qms.frontend.dir" in found["frontend"]["fix"]
    assert_one_line_error(run_tool("inv", "app-check", "--dir", tmp_path / "nowhere"), "is not a folder",
                          "qms.app_dir")


def test_code_that_adds_the_api_prefix_itself_is_told_to_set_the_origin():
    layout = ac.Layout(frontend="frontend", out="out", backend="backend", python_project=None, static_dir="staticfiles",
                    database="db.sqlite3", api_prefix="/api/", admin_prefix="/django-admin/", health_path="health/",
                    asgi_app="backend.asgi:application", domains=("qms.example.com",))
    source = {"frontend/lib/api.ts": "const get = (p) => fetch(`${process.env.NEXT_PUBLIC_API_URL}/api/${p}`)\n"}
    [finding] = ac.doubled_prefix_findings(source, layout)
    assert finding.result == FAIL and finding.saw.startswith("frontend/lib/api.ts:1: ")
    assert finding.fix.startswith("set qms.frontend.api_url: https://qms.example.com ")
    assert ac.doubled_prefix_findings(source, replace(layout, api_url="https://qms.example.com")) == []
    plain = {"a.ts": "axios.create({ baseURL: process.env.NEXT_PUBLIC_API_URL })"}
    assert ac.doubled_prefix_findings(plain, layout) == []


def test_build_refuses_a_config_without_output_export_before_npm_runs(app, write_conf):
    edit(app / "frontend/next.config.mjs", "  output: 'export',\n", "")
    conf = write_conf(f"qms:\n  app_dir: {app}\n  domains: [qms.example.com]\n", name="production.yaml")
    result = run_tool("inv", "-f", conf, "build")
    line = assert_one_line_error(result, "frontend/next.config.mjs: no output: 'export'",
                                 "add the line  output: 'export',  to the config object")
    assert "npm" not in result.stdout.replace("NEXT_PUBLIC", "")   # refused before npm ci or next build
    assert line
