"""The backend's health probe, its commands run by a real shell and curl on this machine against a real HTTP
server: the health path reaches the server as written, whatever URL characters it holds."""
import http.server
import threading

import invoke
import pytest

from tasks import service
from tasks.core.host import Host
from tasks.core.settings import defaults, resolve


@pytest.fixture
def backend():
    """An HTTP server that answers 200 only for the exact path of the health endpoint."""
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/api/health/?probe=1&from=qms" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_health_path_with_shell_characters_reaches_the_backend_as_written(backend):
    here = invoke.Context()   # this machine in the server's place: the probe's commands run in a real shell
    here.original_host = here.host = "here"
    s = resolve([], {**defaults(), "backend": {**defaults()["backend"], "port": backend},
                     "smoke": {**defaults()["smoke"], "health_path": "health/?probe=1&from=qms"}}, None)
    problems = service.health(Host(here, dry=False, owner="ubuntu"), s)
    # answered directly (an unquoted & ran curl in the background, and its ? and & never reached the backend);
    # the probe through nginx has no nginx here to answer it
    assert [p for p in problems if "through nginx" not in p] == []
