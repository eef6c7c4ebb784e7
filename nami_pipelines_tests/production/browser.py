"""Headless Chromium (Debian's `chromium` package) pointed at the running UI.

The UI is a JavaScript application: `--virtual-time-budget` lets the page run its scripts and
GraphQL requests before the screenshot or the DOM dump is taken. Each call gets a fresh profile
folder and a hard timeout, so a stuck browser fails the test instead of hanging it.
"""

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

CHROMIUM = "chromium"
WINDOW = (1600, 1000)
VIRTUAL_TIME_BUDGET_MS = 20_000
BROWSER_TIMEOUT_SECONDS = 90.0
INSTALL_HINT = "apt-get install -y chromium (.ci/run installs it)"


def chromium_path() -> str | None:
    return shutil.which(CHROMIUM)


def _chromium(url: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
    executable = chromium_path()
    if executable is None:
        raise FileNotFoundError(f"{CHROMIUM} is not installed: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            executable,
            "--headless",
            "--no-sandbox",  # root in CI containers; the page is our own UI
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
            *extra,
            url,
        ]
        return subprocess.run(
            command,
            capture_output=True,
            timeout=BROWSER_TIMEOUT_SECONDS,
            check=False,
            start_new_session=True,
        )


def screenshot(url: str, path: Path) -> None:
    """A PNG of the page as rendered in a WINDOW-sized viewport."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    result = _chromium(url, f"--screenshot={path}")
    if result.returncode != 0 or not path.exists():
        raise AssertionError(
            f"chromium --screenshot failed ({result.returncode}): {result.stderr.decode()[-3000:]}"
        )


def rendered_dom(url: str) -> str:
    """The DOM after the page's scripts ran (not the HTML the server sent)."""
    result = _chromium(url, "--dump-dom")
    if result.returncode != 0:
        raise AssertionError(
            f"chromium --dump-dom failed ({result.returncode}): {result.stderr.decode()[-3000:]}"
        )
    return result.stdout.decode("utf-8", errors="replace")


def png_size_and_colors(path: Path, sample_rows: int = 200) -> tuple[int, int, int]:
    """(width, height, distinct colours in evenly spaced rows) of an 8-bit RGB(A) PNG, decoded
    with the standard library: a blank or failed render has one or two colours, the UI many."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")
    position, header, compressed = 8, b"", bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    if depth != 8 or colour_type not in (2, 6):
        raise AssertionError(f"unexpected PNG format: depth {depth}, colour type {colour_type}")
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rows.append(bytes(line))
        previous = line
    step = max(1, height // sample_rows)
    colours = {
        rows[row][column : column + 3]
        for row in range(0, height, step)
        for column in range(0, stride, channels)
    }
    return width, height, len(colours)


def _unfilter(kind: int, line: bytearray, previous: bytearray, channels: int) -> None:
    """Undoes one PNG row filter in place (PNG spec §9)."""
    for index in range(len(line)):
        left = line[index - channels] if index >= channels else 0
        up = previous[index]
        upper_left = previous[index - channels] if index >= channels else 0
        if kind == 1:
            line[index] = (line[index] + left) & 0xFF
        elif kind == 2:
            line[index] = (line[index] + up) & 0xFF
        elif kind == 3:
            line[index] = (line[index] + (left + up) // 2) & 0xFF
        elif kind == 4:
            estimate = left + up - upper_left
            distances = (abs(estimate - left), abs(estimate - up), abs(estimate - upper_left))
            predictor = (left, up, upper_left)[distances.index(min(distances))]
            line[index] = (line[index] + predictor) & 0xFF
