"""Rules for every test of the repository (unit tests, doctests, notebooks under nbval).

1. **Nothing downloads at test time.** ``PNC_DOWNLOAD=0`` is set before any test or kernel
   starts (child processes inherit it: nbval's kernels, the book build, the Colab-like runs),
   so ``pncutils.data.load_dataset`` never fetches a missing file; and inside the test
   processes every socket connection or name lookup to a host other than this machine fails
   at once with :class:`NetworkAccessError` (the loopback server of ``tests/test_site.py``
   and the Jupyter kernels' local ports still work). ``make test`` gets the data *before*
   the tests run (``tools/ensure_system.py``).
2. **A skipped browser test is said plainly.** When ``tests/test_site.py`` is skipped (no
   Chromium), a line just above pytest's closing summary says so and why.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

os.environ["PNC_DOWNLOAD"] = "0"

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}
SITE_TESTS = "tests/test_site.py"


class NetworkAccessError(RuntimeError):
    """A test tried to reach another machine (the suite forbids network access)."""


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).split("%", 1)[0]
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _refuse(what: str, target: object) -> NetworkAccessError:
    return NetworkAccessError(
        f"network access is forbidden in the test suite: {what} {target!r}. Tests must not "
        "download; give them local files (make test fetches the data before the tests run)."
    )


def _guard_network(mp: pytest.MonkeyPatch) -> None:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def _check(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if not _is_local(host):
                raise _refuse("connect to", address)

    def connect(self, address):
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        _check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            raise _refuse("look up", host)
        return real_getaddrinfo(host, *args, **kwargs)

    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket.socket, "connect_ex", connect_ex)
    mp.setattr(socket, "getaddrinfo", getaddrinfo)


_NETWORK_GUARD = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    _guard_network(_NETWORK_GUARD)


def pytest_unconfigure(config: pytest.Config) -> None:
    _NETWORK_GUARD.undo()


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say, just above the closing line, that the browser tests were skipped and why."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if getattr(r, "nodeid", "").startswith(SITE_TESTS)]
    if not skipped:
        return
    reason = ""
    longrepr = skipped[0].longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2]).removeprefix("Skipped: ")
    terminalreporter.write_line(
        f"BROWSER TESTS SKIPPED: {len(skipped)} tests of {SITE_TESTS} did not run "
        f"({reason or 'no reason given'}). The built site was not opened in a browser; "
        "run make test as root on Debian/Ubuntu (it installs chromium), or set PNC_CHROMIUM "
        "to a Chromium binary.",
        yellow=True, bold=True,
    )
