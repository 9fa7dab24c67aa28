"""The inputs of `scripts/deploy.sh` and `make deploy DOMAIN=... EMAIL=...`, checked, and kept with the inventory.

    python3 scripts/deploy_vars.py --domain app.example.com --email oncall@example.com
    {"public_zone_name": "app.example.com", "request_certificates": true, "alarm_notification_emails": ["oncall@example.com"]}
    python3 scripts/deploy_vars.py --write-to inventories/sandbox/hosts.yml --domain app.example.com ...

Without --write-to it prints one JSON object for `ansible-playbook -e '<json>'` (deploy.sh --check: JSON, so no
value is ever re-parsed as Ansible's key=value syntax). With it, it records the inputs in the inventory's
group_vars/all/zz-deploy-inputs.yml, so that every later run with that inventory (failover.yml, the
automatic failover controller, teardown, make endpoints) uses the same zone and recipients as the deploy: a
domain given for one run only would leave failover.yml looking for the health checks under the inventory's
own zone name. The file is loaded after the inventory's other files (hence zz-), so its values win; deleting
it goes back to the inventory's. Either way it exits 2 with a message that names a bad input and the fix.
Standard library only: deploy.sh runs it before the set-up, so a typo is refused at once even on a machine
without the virtualenv.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# RFC 5322's dot-atom without $ and ` (make would expand a $ in `make deploy EMAIL=...`, and no alarm mailbox
# needs either), and no quoted local parts.
LOCAL_PART = re.compile(r"^[A-Za-z0-9!#%&'*+/=?^_{|}~-]+(\.[A-Za-z0-9!#%&'*+/=?^_{|}~-]+)*$")


# The inventory's file of deploy.sh's inputs: group_vars/all/ beside the inventory file, loaded last.
INPUTS_FILE = Path("group_vars") / "all" / "zz-deploy-inputs.yml"


class Refused(ValueError):
    """A bad input; the message names it and the fix."""


def domain_problem(name: str) -> str | None:
    """Why name is not a DNS name deploy can make a public hosted zone of, or None."""
    if not name:
        return "it is empty"
    if any(c.isspace() for c in name):
        return "it contains white space"
    if "://" in name:
        host = urlsplit(name).hostname or ""
        return f"give the bare name, without a scheme or path{f': --domain {host}' if host else ''}"
    if "/" in name:
        return f"give the bare name, without a path: --domain {name.split('/')[0]}"
    if name.endswith("."):
        return f"drop the trailing dot: --domain {name.rstrip('.')}"
    if name != name.lower():
        return f"write it in lower case (Route 53 stores zone names so): --domain {name.lower()}"
    if not name.isascii():
        return "write an internationalised name in its ASCII (xn--) form, as DNS stores it"
    labels = name.split(".")
    if len(labels) < 2:
        return f"it has no dot: give a domain you can delegate, e.g. {name or 'app'}.example.com"
    if len(name) > 253:
        return f"it is {len(name)} characters long; DNS allows 253"
    for label in labels:
        if not label:
            return "it has an empty label (two dots in a row, or a leading dot)"
        if len(label) > 63:
            return f"the label {label[:20]}... is {len(label)} characters long; DNS allows 63"
        if not LABEL.match(label):
            return (
                f"the label {label!r} is not a DNS label: letters, digits and hyphens only, "
                "neither starting nor ending with a hyphen"
            )
    if labels[-1].isdigit():
        return "it is an IP address, not a domain name"
    return None


def email_problem(address: str) -> str | None:
    """Why address is not a plausible email address for alarms, or None."""
    if not address:
        return "it is empty"
    if any(c.isspace() for c in address) or address.count("@") != 1:
        return "an address has exactly one @ and no white space"
    local, domain = address.split("@")
    if not local or len(local) > 64 or not LOCAL_PART.match(local):
        return f"{local!r} is not a plausible mailbox name (before the @)"
    if domain_problem(domain.lower()) is not None:
        return f"{domain!r} is not a domain name with a dot (after the @)"
    return None


def extra_vars(domain: str | None, email: str | None) -> dict[str, object]:
    """site.yml's extra vars for the inputs given; raises Refused naming the input and the fix."""
    out: dict[str, object] = {}
    if domain is not None:
        problem = domain_problem(domain)
        if problem:
            raise Refused(
                f"--domain {domain!r} is not a valid DNS name for the public zone: {problem}. "
                "Give a name with at least one dot, in lower case, such as app.example.com"
            )
        out["public_zone_name"] = domain
        # A domain of one's own is served over HTTPS: certificates for its names, validated in its zone.
        out["request_certificates"] = True
    if email is not None:
        problem = email_problem(email)
        if problem:
            raise Refused(
                f"--email {email!r} is not a plausible address: {problem}. "
                "Give the address that should receive the alarms, such as oncall@example.com"
            )
        out["alarm_notification_emails"] = [email]
    return out


def write_inputs(inventory: Path, values: dict[str, object]) -> Path:
    """Record values in the inventory's INPUTS_FILE, over what it holds already; returns its path."""
    path = inventory.parent / INPUTS_FILE
    kept: dict[str, object] = {}
    if path.is_file():
        # Only this module writes the file, one JSON value per line: read back the same way.
        for line in path.read_text().splitlines():
            if line and not line.startswith("#") and ": " in line:
                key, value = line.split(": ", 1)
                kept[key] = json.loads(value)
    kept.update(values)
    lines = [
        "# Written by scripts/deploy.sh (scripts/deploy_vars.py): the deploy's --domain (with TLS) and --email. Every run with",
        "# this inventory uses them (failover.yml, the failover controller, teardown, make endpoints); loaded after",
        "# the other files here, so they win. Delete this file to go back to the inventory's own values.",
        *(f"{key}: {json.dumps(value)}" for key, value in kept.items()),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/deploy_vars.py", description=__doc__.splitlines()[0])
    parser.add_argument("--domain", help="the public hosted zone's name (public_zone_name)")
    parser.add_argument("--email", help="who receives the alarms (alarm_notification_emails)")
    parser.add_argument("--write-to", metavar="INVENTORY", help="record them with this inventory file instead")
    args = parser.parse_args(argv)
    try:
        values = extra_vars(args.domain, args.email)
    except Refused as refused:
        print(f"deploy: {refused}", file=sys.stderr)
        return 2
    if args.write_to is None:
        print(json.dumps(values))
        return 0
    inventory = Path(args.write_to)
    if not inventory.is_file():
        print(f"deploy: inventory {inventory} does not exist: give the path of an inventory file", file=sys.stderr)
        return 2
    path = write_inputs(inventory, values)
    print(f"deploy: {', '.join(sorted(values))} recorded in {path}: every later run with this inventory uses them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
