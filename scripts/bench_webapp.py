#!/usr/bin/env python3
"""Load-test the web app against a local PostgreSQL with wrk: req/s, p50 and p99 per endpoint.

    .venv/bin/python scripts/bench_webapp.py [--duration 10] [--connections 64] [--workers 2]

Starts its own PostgreSQL (sandbox/postgres.py, fsync off), migrates it, seeds rows, then serves
the app with ``python -m app`` and, as the ceiling, a bare ASGI hello-world with the same uvicorn
settings (workers, uvloop, httptools). Each endpoint gets a warm-up run, then a measured run.
Exit status 1 when a target of issue 3 is missed or any request failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sandbox.postgres import PostgresNode, make_base_dir  # noqa: E402

PASSWORD = "bench-password"  # noqa: S105 - a throw-away local database
SEED_ROWS = 2000


async def hello(scope: dict, receive, send) -> None:
    """The ceiling: an ASGI app as bare as it gets."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"status":"ok"}'})


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("bench: wrk not found: install the Debian package 'wrk' (sudo apt-get install -y wrk) and rerun")
    print("bench: installing the Debian package 'wrk'", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        sys.exit("bench: apt-get installed 'wrk' but it is not on PATH")
    return found


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: server exited with {proc.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"bench: {url} did not answer within {timeout}s; see {log}")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(name: str, out: str) -> Result:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return Result(name, rps, p50, p99, requests, errors)


def run_wrk(wrk: str, args: argparse.Namespace, name: str, url: str, script: Path | None = None) -> Result:
    base = [wrk, f"-t{args.threads}", f"-c{args.connections}", "--latency", "--timeout", "5s"]
    if script:
        base += ["-s", str(script)]
    subprocess.run([*base, "-d", f"{args.warmup}s", url], check=True, capture_output=True)
    out = subprocess.run([*base, "-d", f"{args.duration}s", url], check=True, capture_output=True, text=True).stdout
    result = parse_wrk(name, out)
    print(f"  {name:<18} {result.rps:>9.0f} req/s   p50 {result.p50_ms:>6.2f} ms   p99 {result.p99_ms:>6.2f} ms"
          f"   errors {result.errors}", flush=True)  # fmt: skip
    return result


def serve(cmd: list[str], env: dict[str, str], cwd: Path, log: Path, stack: ExitStack) -> subprocess.Popen:
    handle = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    stack.callback(stop)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per endpoint (default 3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: leave the cores to the server)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers for both servers (default 2)")
    args = parser.parse_args()
    wrk = ensure_wrk()
    python = sys.executable
    base = make_base_dir("bench-webapp-")
    pg = PostgresNode(base / "pg", free_port(), PASSWORD, fast=True)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, base, True)
        stack.callback(pg.destroy)
        pg.init().start()
        pg.create_database("app")
        env = {
            **os.environ,
            "DB_HOST": f"127.0.0.1:{pg.port}",
            "DB_NAME": "app",
            "DB_USER": "postgres",
            "DB_PASSWORD": PASSWORD,
            "REGION": "us-east-1",
            "WEB_CONCURRENCY": str(args.workers),
            "LOG_LEVEL": "INFO",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        subprocess.run([python, "-m", "app", "migrate"], cwd=REPO / "webapp", env=env, check=True, capture_output=True)
        pg.execute(
            "INSERT INTO records (key, value, region) SELECT 'k' || g, repeat('v', 64), 'us-east-1' "
            "FROM generate_series(1, %s) g",
            (SEED_ROWS,),
            dbname="app",
        )
        pg.execute("VACUUM ANALYZE records", dbname="app")

        hello_port, app_port = free_port(), free_port()
        hello_log, app_log = base / "hello.log", base / "app.log"
        hello_cmd = [python, "-m", "uvicorn", "bench_webapp:hello", "--app-dir", str(REPO / "scripts"),
                     "--host", "127.0.0.1", "--port", str(hello_port), "--workers", str(args.workers),
                     "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-server-header",
                     "--log-level", "warning"]  # fmt: skip
        hello_proc = serve(hello_cmd, dict(os.environ), REPO, hello_log, stack)
        app_proc = serve([python, "-m", "app"], {**env, "PORT": str(app_port)}, REPO / "webapp", app_log, stack)
        wait_http(f"http://127.0.0.1:{hello_port}/", hello_proc, hello_log)
        wait_http(f"http://127.0.0.1:{app_port}/health/ready", app_proc, app_log)

        post = base / "post.lua"
        post.write_text(
            'wrk.method = "POST"\n'
            'wrk.body = \'{"key": "bench", "value": "written by wrk"}\'\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        print(f"bench: wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.workers} uvicorn "
              f"workers each, {os.cpu_count()} CPUs, PostgreSQL {pg.bin_dir.parent.name}", flush=True)  # fmt: skip
        app_url = f"http://127.0.0.1:{app_port}"
        results = {
            "bare ASGI": run_wrk(wrk, args, "bare ASGI", f"http://127.0.0.1:{hello_port}/"),
            "/health": run_wrk(wrk, args, "GET /health", f"{app_url}/health"),
            "/api/status": run_wrk(wrk, args, "GET /api/status", f"{app_url}/api/status"),
            "GET /api/data": run_wrk(wrk, args, "GET /api/data", f"{app_url}/api/data"),
            "POST /api/data": run_wrk(wrk, args, "POST /api/data", f"{app_url}/api/data", post),
        }

    ceiling, health = results["bare ASGI"].rps, results["/health"].rps
    checks = [
        ("/health >= 0.5 x bare ASGI", health / ceiling, 0.5),
        ("GET /api/data >= 0.35 x /health", results["GET /api/data"].rps / health, 0.35),
        ("/api/status >= 0.8 x /health", results["/api/status"].rps / health, 0.8),
    ]
    failed = False
    print("targets:")
    for label, ratio, want in checks:
        ok = ratio >= want
        failed |= not ok
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<34} {ratio:.2f}")
    for name, result in results.items():
        if name == "bare ASGI":
            continue
        ok = result.p99_ms <= 50 and result.errors == 0
        failed |= not ok
        label = f"{name} p99 <= 50 ms, 0 errors"
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<34} {result.p99_ms:.2f} ms, {result.errors}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
