"""Settings schema: data in, one-line error (or checked settings) out."""
import pytest

from tasks.core.errors import UserError
from tasks.core.settings import check_layer, check_top_level, defaults, fields, resolve


def test_defaults_match_the_guide():
    d = defaults()
    assert (d["user"], d["app_root"], d["branch"]) == ("ubuntu", "/home/ubuntu/QMS", "main")
    assert {k: d["backend"][k] for k in ("dir", "unit", "app_user", "asgi_app", "admin_prefix")} == {
        "dir": "backend", "unit": "qms-backend", "app_user": "qms", "asgi_app": "backend.asgi:application",
        "admin_prefix": "/django-admin/"}
    assert (d["nginx"]["site"], d["frontend"]["dir"], d["frontend"]["out"]) == ("qms", "frontend", "out")


def test_every_field_has_help_and_a_valid_default():
    for key, field in fields():
        assert field.help, key
        assert field.check(field.default) is None, key


@pytest.mark.parametrize("layer, message", [
    ({"backend": {"wrokers": 2}}, "conf/x.yaml: unknown setting qms.backend.wrokers: did you mean qms.backend.workers?"),
    ({"backend": {"workers": "2"}}, "conf/x.yaml: qms.backend.workers must be an integer from 2 to 16, got '2'"),
    ({"backend": {"workers": 1}}, "qms.backend.workers must be an integer from 2 to 16, got 1"),
    ({"backend": {"workers": True}}, "qms.backend.workers must be an integer"),
    ({"backend": {"unit": "qms@x"}}, "qms.backend.unit must be a unit name without @"),
    ({"backend": {"app_user": "Root Admin"}}, "qms.backend.app_user must be a user name"),
    ({"app_root": "home/ubuntu"}, "qms.app_root must be an absolute path"),
    ({"backend": {"admin_prefix": "/admin"}}, "must be a URL path that starts and ends with '/'"),
    ({"domains": "qms.example.com"}, "qms.domains must be a list of domain names"),
    ({"domains": ["bad domain"]}, "qms.domains must be a list of domain names"),
    ({"frontend": "out"}, "qms.frontend must be a mapping of settings, got str"),
    ({"ssh": {"new_host_keys": "yes"}}, "qms.ssh.new_host_keys must be one of reject, accept, got 'yes'"),
    ({"frontend": {"dir": "../elsewhere"}}, "qms.frontend.dir must be a relative path with / and without '..'"),
    ({"frontend": {"dir": "web\\frontend"}}, "qms.frontend.dir must be a relative path with / and without '..', such as "
                                            "frontend or web/frontend, got 'web\\\\frontend'"),
    ({"smoke": {"health_path": "health check/"}}, "qms.smoke.health_path must be a URL path inside the prefix, "
                                                  "without a leading /, spaces or control characters"),
    ({"smoke": {"health_path": "health/\x1b[2J"}}, "qms.smoke.health_path must be a URL path"),
    ({"smoke": {"health_path": "/api/health/"}}, "qms.smoke.health_path must be a URL path inside the prefix"),
    *[({"branch": bad}, f"qms.branch must be a git name without a leading -, spaces, '..' or any of ~^:?*[\\, such "
                        f"as main, got {bad!r}")
      for bad in ("--upload-pack=touch /tmp/x", "-b", "a b", "a..b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b",
                  "x.lock", "feature/.hidden", "feature//x", "main/", "main.", "@", "a@{1}", "", "tab\tname", 7)],
    ({"git_remote": "--upload-pack=x"}, "qms.git_remote must be a git name without a leading -"),
    ({"backups": {"local_dir": "backups/{stage}"}}, "qms.backups.local_dir must be a value with no placeholder but "
                                                    "{env} ({stage} is unknown), got 'backups/{stage}'"),
    ({"backups": {"s3": {"prefix": "qms/{}/"}}}, "qms.backups.s3.prefix must be a value with no placeholder but {env} "
                                                 "({} is unknown)"),
])
def test_bad_values_name_key_file_and_expectation(layer, message):
    problem = check_layer(layer, "conf/x.yaml")
    assert problem is not None and message in problem
    assert "\n" not in problem


def test_good_layer_passes():
    assert check_layer({"host": "qms-prod", "backend": {"workers": 3}, "domains": ["a.example.com"]}, "f") is None
    for branch in ("main", "feature/login-fix", "release-1.2", "hotfix_2026.12", "user@host"):
        assert check_layer({"branch": branch, "git_remote": "upstream"}, "f") is None, branch


def test_resolve_takes_env_from_the_file_name_and_reports_the_first_bad_layer():
    s = resolve([("conf/production.yaml", {"qms": {"host": "h"}})], {**defaults(), "host": "h"},
                "conf/production.yaml")
    assert s.env == "production" and s.backend.workers == 2 and s.host == "h"
    with pytest.raises(UserError, match="conf/staging.yaml: unknown setting qms.hots"):
        resolve([("conf/staging.yaml", {"qms": {"hots": "h"}})], defaults(), "conf/staging.yaml")


def test_require_names_the_missing_key_and_what_to_set():
    s = resolve([], defaults(), "conf/production.yaml")
    with pytest.raises(UserError) as e:
        s.require("repo", "git-pull")
    assert "conf/production.yaml: qms.repo is not set, and git-pull needs it" in e.value.message
    assert "git URL" in e.value.message


def test_top_level_typo_is_an_error_but_fabric_keys_are_fine():
    check_top_level({"qms": {}, "user": "ubuntu", "connect_kwargs": {}}, "f.yaml", {"user", "connect_kwargs"})
    with pytest.raises(UserError, match="f.yaml: unknown top-level key qsm: did you mean qms"):
        check_top_level({"qsm": {}}, "f.yaml", {"user"})
    with pytest.raises(UserError, match="expected a mapping"):
        check_top_level(["a"], "f.yaml", set())


def test_docs_settings_reference_is_current():
    from tasks.core.settings import PROJECT_ROOT, markdown_reference
    assert (PROJECT_ROOT / "docs" / "settings.md").read_text() == markdown_reference(), \
        (
        "regenerate: python -c 'from tasks.core.settings import markdown_reference as m; print(m(), end=\"\")' "
        "> docs/settings.md")


def test_a_secret_in_the_committed_settings_is_refused_naming_the_file_and_where_it_goes():
    layer = {"qms": {"backend": {"env": {"SITE": "QMS", "EMAIL_HOST_PASSWORD": "hunter22-x"}}}}
    with pytest.raises(UserError) as e:
        resolve([("conf/production.yaml", layer)], {**defaults(), **layer["qms"]}, "conf/production.yaml")
    assert e.value.reason == ("conf/production.yaml: qms.backend.env.EMAIL_HOST_PASSWORD looks like a secret (its "
                               "name says it is): move it to conf/production.env, the git-ignored secrets file (the "
                               "server's .env gets its keys too)")
    # a project-level file that Invoke merged in is named as the source, not the -f file
    with pytest.raises(UserError, match=r"^fabric.yaml: qms.backend.env.DB looks like a secret \(its value is a URL"):
        resolve([("fabric.yaml", {"qms": {"backend": {"env": {"DB": "postgres://u:pw1234@h/db"}}}})],
                {**defaults(), "backend": {**defaults()["backend"], "env": {"DB": "postgres://u:pw1234@h/db"}}},
                "conf/staging.yaml")
    assert resolve([], {**defaults(), "backend": {**defaults()["backend"], "env": {"SITE": "QMS"}}}, None)
