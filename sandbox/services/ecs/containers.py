"""What an ECS task needs from the sandbox before its process starts: pure helpers, no moto state.

- Which images are "the project's web app" (the sandbox runs those as ``python -m app``).
- Secrets: parsing a container ``secrets[].valueFrom`` and picking the JSON key from a secret string.
- Names: rewriting AWS host names in environment values to the local listeners that stand for them
  (the sandbox's stand-in for DNS, see sandbox/runtime.py).
- Addresses: a free private IPv4 address in a subnet's CIDR block, as the task's ENI gets on AWS.
- The container health check: its command with the container's own ports mapped to the local port.

sandbox/services/ecs/scheduler.py uses these; they are kept apart so that they can be tested alone.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# The ECR repository (path) of the project's web image, as the compute role names it
# (compute_ecr_repository_name). SANDBOX_APP_IMAGE_REPOSITORIES overrides it: a comma-separated list.
APP_REPOSITORIES_VARIABLE = "SANDBOX_APP_IMAGE_REPOSITORIES"
DEFAULT_APP_REPOSITORIES = ("hawa/web",)

# Host names that belong to AWS: a value naming one of these is never looked up in real DNS.
AWS_NAME_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn", ".on.aws")


class TaskStartError(Exception):
    """Why a task cannot start; the message is the task's stoppedReason, in the words ECS uses."""


# -- images ----------------------------------------------------------------------------------------


def image_repository(image: str) -> str:
    """The repository path of an image reference, without registry, tag or digest.

    '123456789012.dkr.ecr.us-east-1.amazonaws.com/hawa/web:latest' -> 'hawa/web';
    'nginx:1.27' -> 'nginx'; 'localhost:5000/a/b@sha256:...' -> 'a/b'.
    """
    ref = image.strip()
    ref = ref.split("@", 1)[0]
    first, sep, rest = ref.partition("/")
    # Docker's rule: the first component is a registry when it has a dot or a port, or is localhost.
    if sep and ("." in first or ":" in first or first == "localhost"):
        ref = rest
    name, _, tag = ref.rpartition(":")
    if name and "/" not in tag:
        ref = name
    return ref


def app_repositories(environ: dict[str, str] | None = None) -> frozenset[str]:
    env = os.environ if environ is None else environ
    raw = env.get(APP_REPOSITORIES_VARIABLE)
    if raw is None:
        return frozenset(DEFAULT_APP_REPOSITORIES)
    return frozenset(item.strip().strip("/") for item in raw.split(",") if item.strip())


def is_app_image(image: str, repositories: Iterable[str]) -> bool:
    return image_repository(image) in set(repositories)


def pull_error(image: str) -> str:
    """The stoppedReason of a task whose image the sandbox cannot run (ECS's wording for a missing image)."""
    return (
        "CannotPullContainerError: pull image manifest has been retried 7 time(s): "
        f"failed to resolve ref {image}: {image}: not found "
        f"(the sandbox runs only the project's web app, images of the repositories "
        f"{', '.join(sorted(app_repositories())) or '(none)'}; set {APP_REPOSITORIES_VARIABLE} to add one)"
    )


# -- secrets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretRef:
    """A container secret's valueFrom: a Secrets Manager secret, optionally one JSON key of one version."""

    secret_id: str
    json_key: str = ""
    version_stage: str = ""
    version_id: str = ""


def parse_value_from(value_from: str) -> SecretRef:
    """Parse 'arn:aws:secretsmanager:region:account:secret:name[:json-key:version-stage:version-id]'.

    ECS also accepts a bare secret name (same region) or a full ARN without the JSON parts.
    """
    if not value_from:
        raise TaskStartError("ResourceInitializationError: a container secret has an empty valueFrom")
    parts = value_from.split(":")
    if parts[0] == "arn":
        if len(parts) < 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
            raise TaskStartError(
                f"ResourceInitializationError: valueFrom {value_from!r} is not a Secrets Manager secret ARN "
                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>[:<json-key>:<version-stage>:<version-id>])"
            )
        extra = [*parts[7:], "", "", ""]
        return SecretRef(":".join(parts[:7]), extra[0], extra[1], extra[2])
    return SecretRef(value_from)


def pick_json_key(secret_string: str, ref: SecretRef) -> str:
    """The secret's value, or the value of its JSON key when the reference names one."""
    if not ref.json_key:
        return secret_string
    try:
        doc = json.loads(secret_string)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or ref.json_key not in doc:
        raise TaskStartError(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
            f"failed: unable to retrieve secret from asm: retrieved secret from Secrets Manager did not contain "
            f"json key {ref.json_key} (secret {ref.secret_id})"
        )
    value = doc[ref.json_key]
    return value if isinstance(value, str) else json.dumps(value)


# -- names -----------------------------------------------------------------------------------------


def is_aws_name(host: str) -> bool:
    return host.lower().rstrip(".").endswith(AWS_NAME_SUFFIXES)


class _Refuser:
    """A loopback port that is bound but never listens: every connection to it is refused at once.

    It stands for "this AWS name does not resolve": the process gets an immediate failure instead of
    a real DNS lookup, and no other program can take the port while the sandbox holds it.
    """

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def port(self) -> int:
        with self._lock:
            if self._sock is None:
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                self._sock = sock
            return self._sock.getsockname()[1]


REFUSER = _Refuser()

Lookup = Callable[[str, "int | None"], "tuple[str, int] | None"]


def rewrite_hosts(value: str, lookup: Lookup, default_port: int | None) -> str:
    """Rewrite 'host[:port][,host[:port]...]' values whose hosts the name map knows.

    ``lookup(host, port)`` returns the local (host, port) standing for host:port, or None;
    ``lookup(host, None)`` the one standing for the only port the map has for that host. An item
    without a port tries ``default_port`` first, then that only port. An AWS host name the map does not know becomes a loopback port
    that refuses connections, never a DNS lookup. Values that are not host lists come back unchanged.
    """
    items = [item.strip() for item in value.split(",")]
    if not value.strip() or not all(_HOST_ITEM.fullmatch(item) for item in items):
        return value
    out: list[str] = []
    changed = False
    for item in items:
        host, sep, port_text = item.rpartition(":")
        if not sep:
            host, port_text = item, ""
        if port_text:
            local = lookup(host, int(port_text))
        else:
            local = (lookup(host, default_port) if default_port else None) or lookup(host, None)
        if local is not None:
            out.append(f"{local[0]}:{local[1]}")
            changed = True
        elif is_aws_name(host):
            out.append(f"127.0.0.1:{REFUSER.port()}")
            changed = True
        else:
            out.append(item)
    return ",".join(out) if changed else value


# A host name or IPv4 address, optionally with a port: nothing else is rewritten.
_HOST_ITEM = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.?(?::[0-9]{1,5})?")


# -- addresses -------------------------------------------------------------------------------------


def allocate_ip(cidr: str, taken: set[str], rng: random.Random | None = None) -> str:
    """A private IPv4 address of the subnet that no interface holds (AWS reserves the first four and the last)."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version != 4:
        raise TaskStartError(f"subnet CIDR {cidr} is not IPv4")
    first, last = int(net.network_address) + 4, int(net.broadcast_address) - 1
    if last < first:
        raise TaskStartError(f"subnet {cidr} has no usable addresses")
    rng = rng or random.Random()  # noqa: S311 - addresses, not secrets
    size = last - first + 1
    for _ in range(64):
        candidate = str(ipaddress.IPv4Address(first + rng.randrange(size)))
        if candidate not in taken:
            return candidate
    for value in range(first, last + 1):  # a nearly full subnet: scan
        candidate = str(ipaddress.IPv4Address(value))
        if candidate not in taken:
            return candidate
    raise TaskStartError(
        f"ResourceInitializationError: subnet {cidr} has no free IPv4 address left for the task's network interface"
    )


# -- container health check ------------------------------------------------------------------------


def health_command(check: dict[str, object], container_ports: Iterable[int], local_port: int) -> list[str] | None:
    """The argv to run a container healthCheck in the sandbox, or None when there is none.

    Inside a container the app listens on its containerPort on the container's own loopback; in the
    sandbox it listens on ``local_port``. References to 127.0.0.1/localhost:<containerPort> are mapped.
    """
    command = check.get("command")
    if not isinstance(command, list) or not command:
        return None
    kind, args = str(command[0]), [str(a) for a in command[1:]]

    def remap(text: str) -> str:
        for port in container_ports:
            text = re.sub(rf"\b(127\.0\.0\.1|localhost):{port}\b", f"127.0.0.1:{local_port}", text)
        return text

    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", remap(" ".join(args))]
    if kind == "CMD":
        return [remap(a) for a in args]
    if kind == "NONE":
        return None
    # ECS treats a command without CMD/CMD-SHELL as CMD.
    return [remap(a) for a in [kind, *args]]
