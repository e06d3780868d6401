#!/usr/bin/env python3
"""Start the services the tests need, bound to 127.0.0.1, unless they already run.

    python .ci/services.py postgresql redis      # start (or reuse) these
    python .ci/services.py --list                 # the services this script knows

Idempotent: a service already answering on its port is reused, never restarted. A service
that cannot be started (or does not answer in time) makes the script exit non-zero with
what went wrong, so the nox session that asked for it fails loudly. An unknown name fails
too. Standard library only: it runs before anything is installed.

To add a service, write a function that makes it reachable (or raises ServiceError) and
register it with ``@service("name")``; see :func:`postgresql` for a fixed-port server and
``ensure_port``, which does the port check, the start command and the wait. A machine service
is started with :func:`run` and outlives the session; a helper of the session's own started
with ``subprocess.Popen`` (the Kafka mock cluster, the Pub/Sub emulator) is stopped when the
nox session ends (``.ci/leftovers.py check``, which finds it by its environment).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent

#: name -> a function that makes the service reachable (idempotent) or raises ServiceError.
SERVICES: dict[str, Callable[[], None]] = {}


class ServiceError(Exception):
    """A service could not be started; the message says which and why."""


def service(name: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register a start function under ``name``."""

    def register(start: Callable[[], None]) -> Callable[[], None]:
        SERVICES[name] = start
        return start

    return register


def reachable(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(port: int, seconds: float, host: str = HOST) -> bool:
    """Poll ``host:port`` until it accepts connections or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable(port, host):
            return True
        time.sleep(0.25)
    return reachable(port, host)


def apt_install(*packages: str) -> None:
    """Install Debian packages (the machine kind's registry); quiet unless it fails."""
    if not shutil.which("apt-get"):
        raise ServiceError(f"cannot install {' '.join(packages)}: no apt-get on this machine")
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def need(binary: str, package: str) -> str:
    """The path of ``binary``, installing ``package`` first if it is missing."""
    found = shutil.which(binary) or next((p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}")
                                          if Path(p).exists()), None)
    if found is None:
        apt_install(package)
        found = shutil.which(binary) or f"/usr/sbin/{binary}"
    return found


#: The variable marking a test session's processes (see .ci/leftovers.py): a machine service
#: started here outlives the session, so it runs without it.
SESSION_MARK = "CI_SESSION_MARK"


def run(command: Sequence[str], name: str) -> None:
    """Run a machine service's start command (the service outlives the session that needed it)."""
    env = {key: value for key, value in os.environ.items() if key != SESSION_MARK}
    done = subprocess.run(list(command), capture_output=True, text=True, check=False, timeout=120, env=env)
    if done.returncode != 0:
        raise ServiceError(
            f"{name}: `{' '.join(command)}` exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )


def ensure_port(name: str, port: int, start: Callable[[], None], wait: float = 60.0) -> None:
    """Reuse ``name`` if ``port`` answers; else call ``start`` and wait for the port."""
    if reachable(port):
        print(f"{name}: already running on {HOST}:{port}")
        return
    print(f"{name}: starting (port {port})")
    start()
    if not wait_for(port, wait):
        raise ServiceError(f"{name}: started, but nothing answers on {HOST}:{port} after {wait:.0f}s")
    print(f"{name}: running on {HOST}:{port}")


@service("postgresql")
def postgresql() -> None:
    def start() -> None:
        need("pg_ctlcluster", "postgresql")
        versions = sorted(Path(p).name for p in glob.glob("/etc/postgresql/*"))
        if not versions:
            raise ServiceError("postgresql: no cluster under /etc/postgresql (is the server package installed?)")
        run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"], "postgresql")

    ensure_port("postgresql", 5432, start)


@service("redis")
def redis() -> None:
    def start() -> None:
        binary = need("redis-server", "redis-server")
        Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
        Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
        run([binary, "--daemonize", "yes", "--bind", HOST, "-::1", "--port", "6379", "--save", "",
             "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"], "redis")

    ensure_port("redis", 6379, start)


@service("rabbitmq")
def rabbitmq() -> None:
    def start() -> None:
        run([need("rabbitmq-server", "rabbitmq-server"), "-detached"], "rabbitmq")

    ensure_port("rabbitmq", 5672, start, wait=120.0)


@service("nats")
def nats() -> None:
    def start() -> None:
        binary = need("nats-server", "nats-server")
        Path("/var/lib/nats-server").mkdir(parents=True, exist_ok=True)
        run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", binary, "--",
             "-a", HOST, "-p", "4222", "-js", "-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log"], "nats")

    ensure_port("nats", 4222, start)


@service("mariadb")
def mariadb() -> None:
    def start() -> None:
        binary = need("mariadbd", "mariadb-server")
        Path("/run/mysqld").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/mysqld", "mysql", "mysql")
        run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", binary], "mariadb")

    ensure_port("mariadb", 3306, start)
    # the tests' account (core-plugin-sql): root logs in through the unix socket only
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client:
        run([client, "-uroot", "-e", "CREATE USER IF NOT EXISTS 'core'@'127.0.0.1' IDENTIFIED BY 'core'; "
             "GRANT ALL PRIVILEGES ON *.* TO 'core'@'127.0.0.1' WITH GRANT OPTION;"], "mariadb")


@service("mosquitto")
def mosquitto() -> None:
    def start() -> None:
        run([need("mosquitto", "mosquitto"), "-d", "-c", "/etc/mosquitto/mosquitto.conf"], "mosquitto")

    ensure_port("mosquitto", 1883, start)


@service("kafka")
def kafka() -> None:
    """The librdkafka mock cluster (no Kafka server can be installed here), held by
    plugins/core-plugin-kafka/tests/mock_cluster.py; its bootstrap list goes to
    $CORE_KAFKA_BOOTSTRAP_FILE (default .ci/.kafka-bootstrap). Needs confluent-kafka in this
    interpreter (the plugin's nox session installs it first)."""
    import os

    path = Path(os.environ.get("CORE_KAFKA_BOOTSTRAP_FILE", ROOT / ".ci" / ".kafka-bootstrap"))
    if path.is_file() and (hosts := path.read_text().strip()):
        host, _, port = hosts.split(",")[0].rpartition(":")
        if reachable(int(port), host):
            print(f"kafka: mock cluster already running at {hosts}")
            return
    if subprocess.run([sys.executable, "-c", "import confluent_kafka"], capture_output=True).returncode:
        raise ServiceError(f"kafka: confluent-kafka is not installed for {sys.executable}; pip install it")
    path.unlink(missing_ok=True)
    holder = ROOT / "plugins" / "core-plugin-kafka" / "tests" / "mock_cluster.py"
    with open(path.with_name(path.name + ".log"), "ab") as log:
        subprocess.Popen([sys.executable, str(holder), "--write", str(path)], stdout=log, stderr=log,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (path.is_file() and path.read_text().strip()):
        if time.monotonic() > deadline:
            raise ServiceError(f"kafka: the mock cluster wrote no bootstrap list to {path} in 30s (see {path}.log)")
        time.sleep(0.1)
    print(f"kafka: mock cluster running at {path.read_text().strip()}")


@service("google")
def google() -> None:
    """The official Pub/Sub emulator (Debian package google-cloud-cli-pubsub-emulator, under the
    root ``gcloud info`` prints), on 127.0.0.1:8085, or a free port if 8085 is taken by something
    else; its ``host:port`` goes to $CORE_PUBSUB_EMULATOR_FILE (default .ci/.pubsub-emulator-host),
    for ``PUBSUB_EMULATOR_HOST``. The start code is the plugin tests' own (standard library)."""
    import importlib.util
    import os
    import urllib.request

    def is_emulator(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=2) as answer:
                return bool(answer.read().strip() == b"Ok")
        except OSError:
            return False

    path = Path(os.environ.get("CORE_PUBSUB_EMULATOR_FILE", ROOT / ".ci" / ".pubsub-emulator-host"))
    known = path.read_text().strip() if path.is_file() else ""
    for port in dict.fromkeys(([int(known.rpartition(":")[2])] if known else []) + [8085]):
        if reachable(port) and is_emulator(port):
            path.write_text(f"{HOST}:{port}\n")
            print(f"google: Pub/Sub emulator already running on {HOST}:{port}")
            return
    spec = importlib.util.spec_from_file_location(
        "pubsub_emulator", ROOT / "plugins" / "core-plugin-google" / "tests" / "emulator.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    port = 8085
    if reachable(port):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
    try:
        module.Emulator(port, path.with_name(path.name + ".log")).start()
    except module.EmulatorError as exc:
        raise ServiceError(f"google: {exc}") from None
    path.write_text(f"{HOST}:{port}\n")
    print(f"google: Pub/Sub emulator running on {HOST}:{port} (PUBSUB_EMULATOR_HOST={HOST}:{port})")


@service("aws")
def aws() -> None:
    """A moto server (SNS and SQS for boto3; ``pip install 'moto[server]'`` into this interpreter
    first if it is missing) on 127.0.0.1:5000, or a free port if 5000 is taken by something else;
    its endpoint goes to $CORE_AWS_ENDPOINT_FILE (default .ci/.aws-endpoint), for the option
    ``endpoint_url``. The start code is the plugin tests' own (standard library)."""
    import importlib.util
    import os
    import urllib.request

    def is_moto(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/moto-api/data.json", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    path = Path(os.environ.get("CORE_AWS_ENDPOINT_FILE", ROOT / ".ci" / ".aws-endpoint"))
    known = path.read_text().strip() if path.is_file() else ""
    for port in dict.fromkeys(([int(known.rpartition(":")[2])] if known else []) + [5000]):
        if reachable(port) and is_moto(port):
            path.write_text(f"http://{HOST}:{port}\n")
            print(f"aws: moto server already running on {HOST}:{port}")
            return
    python = sys.executable
    if sys.prefix == sys.base_prefix:  # the system's python (Debian's refuses pip): a venv of our own
        venv = ROOT / ".ci" / ".aws-moto-venv"
        if not (venv / "bin" / "python").exists():
            run([sys.executable, "-m", "venv", str(venv)], "aws")
        python = str(venv / "bin" / "python")
    if subprocess.run([python, "-c", "import moto.server"], capture_output=True).returncode:
        print(f"aws: installing moto[server] for {python}")
        run([python, "-m", "pip", "install", "-q", "moto[server]>=5,<6"], "aws")
    spec = importlib.util.spec_from_file_location(
        "moto_server", ROOT / "plugins" / "core-plugin-aws" / "tests" / "moto_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    port = 5000
    if reachable(port):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
    try:
        module.MotoServer(port, path.with_name(path.name + ".log"), str(Path(python).with_name("moto_server"))).start()
    except module.MotoError as exc:
        raise ServiceError(f"aws: {exc}") from None
    path.write_text(f"http://{HOST}:{port}\n")
    print(f"aws: moto server running on {HOST}:{port} (endpoint_url=http://{HOST}:{port})")


@service("azure")
def azure() -> None:
    """Our Service Bus stand-in (plugins/core-plugin-azure/tests/standin.py, python-qpid-proton;
    no Service Bus emulator runs here), on a free port of 127.0.0.1; its connection string goes
    to $CORE_AZURE_STANDIN_FILE (default .ci/.azure-standin), for ``CORE_AZURE_SERVICEBUS``.
    python-qpid-proton is an sdist with a C extension: if this interpreter lacks it, the build
    tools it needs are installed with apt, then the package with pip."""
    import os

    path = Path(os.environ.get("CORE_AZURE_STANDIN_FILE", ROOT / ".ci" / ".azure-standin"))
    known = path.read_text().strip() if path.is_file() else ""
    if known and reachable(int(known.split(";")[0].rpartition(":")[2])):
        print(f"azure: Service Bus stand-in already running ({known.split(';')[0]})")
        return
    if subprocess.run([sys.executable, "-c", "import proton"], capture_output=True).returncode:
        apt_install("gcc", "python3-dev", "libssl-dev", "pkg-config")
        run([sys.executable, "-m", "pip", "install", "--quiet", "python-qpid-proton>=0.39"], "azure")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "azure_standin", ROOT / "plugins" / "core-plugin-azure" / "tests" / "standin.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its process wrapper is standard library only
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    try:
        module.StandIn(port, path.parent / ".azure-standin.d").start()
    except module.StandInError as exc:
        raise ServiceError(f"azure: {exc}") from None
    connection = module.connection_string(port)
    path.write_text(connection + "\n")
    print(f"azure: Service Bus stand-in running on {HOST}:{port} (export CORE_AZURE_SERVICEBUS=\"$(cat {path})\")")


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens there, else (or without one) a free port of 127.0.0.1."""
    if preferred is not None and not reachable(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def address_file(variable: str, default: str) -> Path:
    """Where a session helper's ``host:port`` is written (``$variable``, else ``.ci/<default>``)."""
    return Path(os.environ.get(variable, ROOT / ".ci" / default))


def reuse(name: str, path: Path) -> bool:
    """Tell whether the helper whose address ``path`` holds still answers."""
    known = path.read_text().strip() if path.is_file() else ""
    if known and reachable(int(known.rpartition(":")[2])):
        print(f"{name}: already running on {known}")
        return True
    return False


def detach(name: str, command: list[str], log: Path, port: int, path: Path, wait: float = 60.0) -> None:
    """Start a session helper on ``port``, wait for it, and write its address to ``path``."""
    with open(log, "ab") as out:
        subprocess.Popen(command, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    if not wait_for(port, wait):
        raise ServiceError(f"{name}: started, but nothing answers on {HOST}:{port} after {wait:.0f}s (see {log})")
    path.write_text(f"{HOST}:{port}\n")
    print(f"{name}: running on {HOST}:{port} (address in {path})")


#: Consul 1.8 is not in Debian 12: Debian 11's package, unpacked under .ci/.consul/.
CONSUL_SUITE = "bullseye"


def consul_binary() -> Path:
    """The ``consul`` binary, fetched from Debian 11 with a private sources list if missing."""
    found = shutil.which("consul")
    if found:
        return Path(found)
    base = ROOT / ".ci" / ".consul"
    binary = base / "root" / "usr" / "bin" / "consul"
    if binary.exists():
        return binary
    if not shutil.which("apt-get"):
        raise ServiceError("consul: not installed and no apt-get to fetch Debian 11's package")
    lists, cache = base / "apt" / "lists", base / "apt" / "cache"
    for folder in (lists / "partial", cache / "archives" / "partial"):
        folder.mkdir(parents=True, exist_ok=True)
    sources = base / "apt" / "sources.list"
    sources.write_text(f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                       f"{debian_mirror()} {CONSUL_SUITE} main\n")
    options = [f"-oDir::Etc::SourceList={sources}", "-oDir::Etc::SourceParts=/dev/null",
               f"-oDir::State::Lists={lists}", f"-oDir::Cache={cache}"]
    run(["apt-get", *options, "update", "-qq"], "consul")
    done = subprocess.run(["apt-get", *options, "download", "consul"], cwd=base, capture_output=True,
                          text=True, check=False, timeout=300)
    debs = sorted(base.glob("consul_*.deb"))
    if not debs:
        raise ServiceError(f"consul: apt-get download consul ({CONSUL_SUITE}) got nothing:\n{done.stderr[-2000:]}")
    run(["dpkg", "-x", str(debs[-1]), str(base / "root")], "consul")
    return binary


def debian_mirror() -> str:
    """The Debian archive this machine's sources use (so the private list asks the same one)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        text = path.read_text() if path.is_file() else ""
        for line in text.splitlines():
            words = line.replace("URIs:", " ").split()
            for word in words:
                if word.startswith("http") and word.rstrip("/").endswith("/debian"):
                    return word.rstrip("/")
    return "http://deb.debian.org/debian"


@service("consul")
def consul() -> None:
    """A Consul 1.8 dev agent (in memory) on 127.0.0.1: HTTP on 8500, or a free port if 8500 is
    taken; its other ports are free ones (DNS, gRPC off). Its ``host:port`` goes to
    $CORE_CONSUL_FILE (default .ci/.consul-address), for ``consul://host:port``."""
    path = address_file("CORE_CONSUL_FILE", ".consul-address")
    if reuse("consul", path):
        return
    binary = consul_binary()
    http = free_port(8500)
    ports = {flag: free_port() for flag in ("-serf-lan-port", "-serf-wan-port", "-server-port")}
    command = [str(binary), "agent", "-dev", "-bind", HOST, "-client", HOST, "-http-port", str(http),
               "-dns-port", "-1", "-grpc-port", "-1", *(a for flag, port in ports.items() for a in (flag, str(port)))]
    detach("consul", command, path.with_name(path.name + ".log"), http, path)


@service("etcd")
def etcd() -> None:
    """An etcd server (Debian's etcd-server) on 127.0.0.1: clients on 2379, or a free port if
    2379 is taken; peers on a free port; data under .ci/.etcd.d/. Its ``host:port`` goes to
    $CORE_ETCD_FILE (default .ci/.etcd-address), for ``etcd://host:port``."""
    path = address_file("CORE_ETCD_FILE", ".etcd-address")
    if reuse("etcd", path):
        return
    binary = need("etcd", "etcd-server")
    client, peer = free_port(2379), free_port()
    data = ROOT / ".ci" / ".etcd.d"
    shutil.rmtree(data, ignore_errors=True)
    command = [binary, "--name", "core-ci", "--data-dir", str(data),
               "--listen-client-urls", f"http://{HOST}:{client}", "--advertise-client-urls", f"http://{HOST}:{client}",
               "--listen-peer-urls", f"http://{HOST}:{peer}", "--initial-advertise-peer-urls", f"http://{HOST}:{peer}",
               "--initial-cluster", f"core-ci=http://{HOST}:{peer}"]
    detach("etcd", command, path.with_name(path.name + ".log"), client, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="services to start (see --list)")
    parser.add_argument("--list", action="store_true", help="print the known services and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(sorted(SERVICES)))
        return 0
    unknown = [name for name in args.names if name not in SERVICES]
    if unknown:
        print(f"error: unknown service(s) {', '.join(unknown)}; known: {', '.join(sorted(SERVICES))}. "
              f"Add a start function to {Path(__file__).relative_to(ROOT)} (see its docstring).", file=sys.stderr)
        return 2
    failed = 0
    for name in dict.fromkeys(args.names):
        try:
            SERVICES[name]()
        except (ServiceError, OSError, subprocess.SubprocessError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
