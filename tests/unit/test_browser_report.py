"""browser-check's judgement is data: what a page requested in, one row per request with its problem out."""
from tasks.core.browser_report import page_rows, request_problem
from tasks.core.cdp import Request

SITE = {"https://qms.test", "http://qms.test", "https://www.qms.test", "http://www.qms.test"}
API = "https://qms.test"


def problem(url, status=200, error="", cors="", api=API):
    return request_problem(url, status, error, cors, SITE, api)


def test_a_request_to_localhost_names_the_build():
    assert "calls 127.0.0.1" in problem("http://127.0.0.1:8000/api/login/", status=None,
                                         error="net::ERR_CONNECTION_REFUSED")
    assert "calls localhost" in problem("http://localhost:8000/api/health/")


def test_cors_rejections_failures_errors_and_foreign_origins():
    assert problem("https://www.qms.test/api/defects/", status=None, error="net::ERR_FAILED",
                   cors="MissingAllowOriginHeader", api="https://www.qms.test").startswith(
        "CORS rejection (MissingAllowOriginHeader)")
    assert problem("https://qms.test/api/x/", status=500) == "answers 500"
    assert problem("https://qms.test/", status=None, error="net::ERR_TOO_MANY_REDIRECTS").startswith("redirect loop")
    assert problem("https://cdn.example.com/x.js").startswith("another origin")
    assert problem("https://qms.test/_next/static/a.js") == ""
    assert problem("https://qms.test/favicon.ico", status=404) == ""
    assert problem("https://qms.test/x.js", status=None, error="net::ERR_ABORTED") == ""


def test_rows_for_every_request_console_errors_and_a_failed_navigation():
    requests = [Request("https://qms.test/", 200),
                Request("http://127.0.0.1:8000/api/health/", None, "net::ERR_CONNECTION_REFUSED")]
    rows = page_rows("/", requests, ["Error: broken on purpose\n    at x (a.js:1)"], "", SITE, API)
    assert [r[3] == "" for r in rows] == [True, False, False]
    assert rows[2] == ["/", "(console)", "-", "JavaScript error: Error: broken on purpose"]
    loop = page_rows("/admin/users/", [], [], "net::ERR_TOO_MANY_REDIRECTS", SITE, API)
    assert loop == [["/admin/users/", "/admin/users/", "-", "redirect loop"]]


def test_no_browser_is_one_line_with_how_to_install_one(tmp_path):
    import pytest
    from tasks.core import cdp
    from tasks.core.errors import UserError
    nowhere = dict(environ={}, which=lambda name: None, is_file=lambda p: False)
    with pytest.raises(UserError, match="apt-get install chromium"):
        cdp.find_browser(None, **nowhere)
    with pytest.raises(UserError, match="qms.browser.path /nope does not exist"):
        cdp.find_browser("/nope", **nowhere)
    browser = tmp_path / "chrome"
    browser.write_text("")
    assert cdp.find_browser(str(browser)) == str(browser)


def test_windows_finds_a_per_user_chrome_then_edge():
    from tasks.core import cdp
    environ = {"PROGRAMFILES": r"C:\Program Files", "PROGRAMFILES(X86)": r"C:\Program Files (x86)",
               "LOCALAPPDATA": r"C:\Users\김철수\AppData\Local"}
    chrome = r"C:\Users\김철수\AppData\Local\Google\Chrome\Application\chrome.exe"
    edge = r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe"
    find = lambda *present: cdp.find_browser(None, environ, lambda name: None, lambda p: p in present)
    assert find(chrome, edge) == chrome
    assert find(edge) == edge


def test_pages_that_never_call_the_api_are_not_called_fine():
    from tasks.core.browser_report import api_calls, no_api_note
    rows = [["/", "https://qms.test/", "200", ""], ["/", "https://qms.test/_next/static/a.js", "200", ""]]
    assert api_calls(rows, "https://qms.test/api") == 0
    assert "qms.browser.pages" in no_api_note("https://qms.test/api")
    assert api_calls(rows + [["/", "https://qms.test/api/defects/", "200", ""]], "https://qms.test/api/") == 1
