"""The transport over real sockets: the environment's proxy, transport errors by name, and
answers decoded in the charset they name."""

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nami_pipelines.destinations.transport import HttpTransport


class _Answering(BaseHTTPRequestHandler):
    """Answers every POST with the server's `answer`, after noting the request line."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.server.seen.append((self.path, self.rfile.read(length), self.headers))
        body, content_type = self.server.answer
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def answering() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    server.seen = []
    server.answer = (b"<html>proxy</html>", "text/html")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _port(server: ThreadingHTTPServer) -> int:
    return server.server_address[1]


def test_requests_go_through_the_proxy_the_environment_names(answering, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_port(answering)}")
    monkeypatch.setenv("NO_PROXY", "")
    transport = HttpTransport(timeout=5, pool_size=1)
    response = transport.post(
        "http://api.example.invalid/2/httpapi",
        data=b'{"events":[]}',
        headers={"Content-Type": "application/json"},
        auth=("key", "secret"),
    )
    assert (response.status, response.body) == (200, "<html>proxy</html>")
    ((path, body, headers),) = answering.seen
    # A proxy is asked for the whole URL; the body and the credentials pass through it.
    assert path == "http://api.example.invalid/2/httpapi"
    assert body == b'{"events":[]}'
    assert headers["Authorization"] == "Basic a2V5OnNlY3JldA=="


def test_forms_are_encoded_and_answers_read_in_their_charset(answering):
    answering.answer = ("réponse".encode("latin-1"), "text/plain; charset=ISO-8859-1")
    transport = HttpTransport(timeout=5, pool_size=1)
    url = f"http://127.0.0.1:{_port(answering)}/identify"
    response = transport.post(url, data={"api_key": "k", "identification": '[{"a": 1}]'})
    assert response.body == "réponse"
    ((_, body, headers),) = answering.seen
    assert body == b"api_key=k&identification=%5B%7B%22a%22%3A+1%7D%5D"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_transport_errors_come_back_as_status_0_with_their_name():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    transport = HttpTransport(timeout=0.5, pool_size=1)
    refused = transport.post(f"http://127.0.0.1:{closed_port}/2/httpapi", data=b"{}")
    assert (refused.status, refused.error) == (0, "ConnectionError")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        quiet = transport.post(f"http://127.0.0.1:{port}/2/httpapi", data=b"{}")
    assert (quiet.status, quiet.error) == (0, "ReadTimeout")
