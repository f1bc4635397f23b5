"""The backend's health probe, its command run by a real shell and curl on this machine against a real HTTP server
on a unix socket, as a release's instance listens: the health path reaches it as written, whatever URL characters it
holds."""
import http.server
import socketserver
import subprocess
import threading

import pytest

from tasks.core import facts
from tasks.core.settings import defaults, resolve
from tasks.core.smoke import health_url


@pytest.fixture
def backend(tmp_path):
    """An HTTP server on a unix socket that answers 200 only for the exact path of the health endpoint."""
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/api/health/?probe=1&from=qms" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    path = tmp_path / "r1.sock"
    server = Server(str(path), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path
    server.shutdown()


def test_a_health_path_with_shell_characters_reaches_the_backend_as_written(backend):
    s = resolve([], {**defaults(), "smoke": {**defaults()["smoke"], "health_path": "health/?probe=1&from=qms"}}, None)
    command = facts.instance_state_command("qms-backend@r1", str(backend), health_url(s))
    found = facts.parse_instance_state(subprocess.run(["bash", "-c", command], capture_output=True, text=True).stdout)
    # an unquoted & ran curl in the background, and its ? and & never reached the backend
    assert found.health == "200"
