"""A throw-away PostgreSQL cluster of one test's own, which the test may stop and start at will
(a real server going away, not a cut connection) without touching the shared server that the
other tests, and the other test worker, use at the same time.

It runs the machine's own server binaries (the newest `/usr/lib/postgresql/<version>/bin`, else
`initdb` and `pg_ctl` on PATH) in a temporary folder, on a free port of 127.0.0.1, with trust
authentication and no Unix socket. `initdb` and `postgres` refuse to run as root, so where the
tests run as root (as here and in CI) the cluster runs as the `postgres` system user, who owns
its folder. Leaving the `with` always stops the server and removes the folder.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self

from nami_pipelines_tests.conftest import free_port

SERVER_BINARIES_GLOB: Final = "/usr/lib/postgresql/*/bin"
SYSTEM_USER: Final = "postgres"
SUPERUSER: Final = "postgres"
COMMAND_TIMEOUT_SECONDS: Final = 60

StopMode = Literal["fast", "immediate"]


class PostgresUnavailable(Exception):
    """Why this machine cannot run a private cluster (no server binaries, no user to run them)."""


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """`/usr/lib/postgresql/15/bin` sorts by (15,), `9.6` by (9, 6); other names first."""
    parts = bin_dir.parent.name.split(".")
    return tuple(int(part) for part in parts) if all(p.isdigit() for p in parts) else (-1,)


def server_binaries() -> Path:
    """The folder holding `initdb` and `pg_ctl`: the newest installed version, found at run time."""
    installed = [
        folder
        for folder in Path("/").glob(SERVER_BINARIES_GLOB.lstrip("/"))
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file()
    ]
    if installed:
        return max(installed, key=_version_key)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is not None and (Path(pg_ctl).parent / "initdb").is_file():
        return Path(pg_ctl).parent
    raise PostgresUnavailable(
        f"a private PostgreSQL cluster needs the server binaries (initdb, pg_ctl) in "
        f"{SERVER_BINARIES_GLOB} or on PATH"
    )


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: `postgres` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"the tests run as root, which PostgreSQL refuses, and there is no {SYSTEM_USER!r} "
            "system user to run a private cluster as"
        ) from None


class PrivatePostgres:
    """`with PrivatePostgres() as cluster:` a running server at `cluster.url`; `stop()` and
    `start()` take it down and bring it back on the same port with the same data."""

    def __init__(self) -> None:
        self.binaries = server_binaries()
        self.account = _server_account()
        self.port = free_port()
        self.url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        self.folder: Path | None = None

    @property
    def data(self) -> Path:
        assert self.folder is not None, "the cluster is used outside its `with`"
        return self.folder / "data"

    @property
    def log(self) -> Path:
        assert self.folder is not None, "the cluster is used outside its `with`"
        return self.folder / "server.log"

    def __enter__(self) -> Self:
        # mkdtemp under /tmp, not pytest's tmp_path: the server's account must reach the folder.
        self.folder = Path(tempfile.mkdtemp(prefix="nami-pg-"))
        try:
            if self.account is not None:
                os.chown(self.folder, self.account.pw_uid, self.account.pw_gid)
            self._run(
                "initdb",
                f"--pgdata={self.data}",
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # a throw-away cluster's files; the server itself keeps fsync on
            )
            self._configure()
            self.start()
        except BaseException:
            self._clean_up()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._clean_up()

    def _configure(self) -> None:
        """Listen on our port of 127.0.0.1 only. Since `initdb --no-sync` left the files unsynced,
        crash recovery would fsync them one by one (seconds); one `syncfs` does it (14 and later)."""
        settings = (
            f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
        )
        if int((self.data / "PG_VERSION").read_text().split(".")[0]) >= 14:
            settings += "recovery_init_sync_method = syncfs\n"
        with (self.data / "postgresql.conf").open("a") as configuration:
            configuration.write(settings)

    def start(self) -> None:
        """Start the server and return once it accepts connections (after crash recovery, if
        the last stop was `immediate`)."""
        self._run("pg_ctl", "start", "--wait", f"--pgdata={self.data}", f"--log={self.log}")

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server and return once it is gone. `fast` rolls back open transactions and
        shuts down cleanly; `immediate` kills every server process, as a crash does."""
        self._run("pg_ctl", "stop", "--wait", f"--pgdata={self.data}", f"--mode={mode}")

    def _run(self, program: str, *arguments: str) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        account = self.account
        command = [str(self.binaries / program), *arguments]
        try:
            subprocess.run(
                command,
                cwd=self.folder,
                env={**environment, "LC_ALL": "C"},
                user=account.pw_uid if account else None,
                group=account.pw_gid if account else None,
                extra_groups=[] if account else None,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=True,
                timeout=COMMAND_TIMEOUT_SECONDS,
            )
        except subprocess.CalledProcessError as failure:
            server_log = self.log.read_text()[-4000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({failure.returncode}):\n"
                f"{failure.stdout}{failure.stderr}{server_log}"
            ) from None

    def _clean_up(self) -> None:
        """Stop whatever server runs on the folder (killing it if `pg_ctl` cannot), then remove
        the folder."""
        if self.folder is None:
            return
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        if pid_file.exists():
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None
