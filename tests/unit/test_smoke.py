"""Redirect chains are data: a dict of url -> (status, location) stands in for the server."""
from tasks.core.smoke import follow

HOSTS = {"qms.test", "www.qms.test"}


def fetcher(answers):
    return lambda url: answers.get(url, (404, ""))


def test_a_loop_is_reported_with_its_chain():
    answers = {"https://qms.test/admin/users/": (301, "/admin/users"),
               "https://qms.test/admin/users": (301, "https://qms.test/admin/users/")}
    result = follow(fetcher(answers), "https://qms.test/admin/users/", HOSTS)
    assert result.problem == "redirect loop"
    assert result.describe_chain() == ("https://qms.test/admin/users/ (301) -> https://qms.test/admin/users (301) -> "
                                       "https://qms.test/admin/users/ (301)")


def test_http_to_https_then_www_then_page_is_fine():
    answers = {"http://qms.test/": (301, "https://qms.test/"), "https://qms.test/": (200, "")}
    result = follow(fetcher(answers), "http://qms.test/", HOSTS)
    assert result.problem is None and result.status == 200 and len(result.chain) == 2


def test_errors_and_no_answer():
    assert follow(fetcher({}), "https://qms.test/x", HOSTS).problem == "answers 404"
    assert follow(lambda url: (0, ""), "https://qms.test/x", HOSTS).problem == "no answer"


def test_a_redirect_off_site_ends_the_walk():
    answers = {"https://qms.test/login": (302, "https://accounts.example.com/auth")}
    result = follow(fetcher(answers), "https://qms.test/login", HOSTS)
    assert result.problem is None and result.status == 302


def test_a_cors_preflight_is_judged_by_the_origin_it_allows():
    from tasks.core.smoke import cors_problem
    answered = ("HTTP/1.1 200 OK\r\naccess-control-allow-origin: https://www.qms.test\r\n"
                "access-control-allow-methods: GET\r\n")
    assert cors_problem(answered, "https://www.qms.test") is None
    problem = cors_problem(answered, "https://qms.test")
    assert "from https://qms.test is refused" in problem and "https://www.qms.test" in problem
    assert "missing" in cors_problem("HTTP/1.1 200 OK\r\nvary: origin\r\n", "https://qms.test")
