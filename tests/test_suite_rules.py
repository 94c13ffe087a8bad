"""The suite's rules (root ``conftest.py``): nothing downloads at test time, and skipped
browser tests are said plainly in the closing summary."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pncutils import data

# the root conftest's NetworkAccessError (a RuntimeError; conftest modules are not imported)
NetworkAccessError = RuntimeError


def test_downloads_are_off_for_the_whole_suite_and_its_children():
    assert os.environ["PNC_DOWNLOAD"] == "0"
    assert not data.downloads_allowed()


@pytest.mark.parametrize("address", [("93.184.216.34", 80), ("2606:2800:220:1::", 443),
                                     ("example.org", 80)])
def test_connections_to_other_machines_fail_loudly(address):
    with pytest.raises(NetworkAccessError, match="network access is forbidden"):
        socket.create_connection(address, timeout=1)


def test_urllib_and_name_lookups_fail_loudly():
    with pytest.raises(NetworkAccessError, match="look up 'example.org'"):
        socket.getaddrinfo("example.org", 443)
    with pytest.raises((NetworkAccessError, urllib.error.URLError)) as info:
        urllib.request.urlopen("http://example.org/", timeout=1)
    assert "network access is forbidden" in str(info.value)


def test_the_loopback_still_works():
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for host in ("127.0.0.1", "localhost"):
            url = f"http://{host}:{server.server_port}/"
            with urllib.request.urlopen(url, timeout=5) as response:
                assert response.read() == b"hello"
    finally:
        server.shutdown()
        server.server_close()


def test_a_missing_dataset_is_an_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PNC_DATA", raising=False)
    monkeypatch.setitem(data.SYSTEM_DIRS, "mnist", [])
    with pytest.raises(data.DatasetNotFoundError, match="PNC_DOWNLOAD='0'"):
        data.load_dataset("mnist", root=tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_skipped_browser_tests_are_said_above_the_closing_line():
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PNC_CHROMIUM=str(root / "no-such-browser"))
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "tests/test_site.py"], cwd=root, env=env, capture_output=True,
                         text=True, timeout=120)
    lines = res.stdout.strip().splitlines()
    assert res.returncode == 0, res.stdout[-2000:]
    assert lines[-2].startswith("BROWSER TESTS SKIPPED: ") and "no Chromium" in lines[-2]
    assert " skipped in " in lines[-1]
