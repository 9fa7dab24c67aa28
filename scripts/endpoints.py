"""Where a deployment serves and who hears its alarms, read from the AWS APIs: `make endpoints`.

    .venv/bin/python scripts/endpoints.py [-i inventories/sandbox/hosts.yml] [--json]

scripts/deploy.sh prints it at the end. The same for the sandbox and for a real account (scripts/deployment.py
picks the endpoint and credentials). Each resource is found the way the roles' outputs.yml find it for the
summary at the end of site.yml, by the name the roles give it: the distribution by its caller reference
<project>-<env>-cdn (roles/cdn), each region's ALB <project>-<env>-<region>-alb (roles/compute) and alarm
topic <project>-<env>-<region>-alarms (roles/monitoring), and the public zones tagged with the project and
environment (roles/dns tags the zone it makes, whatever its name). On top of the summary
it shows what a person must act on: the zone's name servers, to delegate the domain to, and each alarm
subscription's status (an email subscription waits for its owner's click). Webhook URLs are shown without
their path and query, which often carry an integration key.

Exit status: 0, also when something is not deployed yet (it says so); 2 when AWS cannot be asked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from scripts.deployment import Deployment, clients, connect, read_inventory  # noqa: E402 - after sys.path

PENDING = "PendingConfirmation"  # what SNS shows as the SubscriptionArn of an unconfirmed subscription


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def distribution(cloudfront: Any, name: str) -> dict[str, str] | None:
    """The distribution whose CallerReference is name (as roles/cdn's cloudfront_ha_distribution_info finds it)."""
    for page in cloudfront.get_paginator("list_distributions").paginate():
        for summary in page.get("DistributionList", {}).get("Items") or []:
            config = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
            if config.get("CallerReference") == name:
                return {
                    "id": summary["Id"],
                    "domain_name": summary["DomainName"],
                    "url": f"https://{summary['DomainName']}",
                    "status": summary["Status"],
                    # The names it serves with its own certificate (playbooks/certificates.yml): <zone>, app.<zone>.
                    "aliases": (config.get("Aliases") or {}).get("Items") or [],
                }
    return None


def _zone(route53: Any, zone_id: str, name: str) -> dict[str, Any]:
    zone = route53.get_hosted_zone(Id=zone_id)
    app = f"app.{name}"
    records = route53.list_resource_record_sets(HostedZoneId=zone_id, StartRecordName=app, MaxItems="10")
    app_records = [r for r in records["ResourceRecordSets"] if r["Name"].rstrip(".") == app]
    return {
        "id": zone_id,
        "name": name,
        "name_servers": zone.get("DelegationSet", {}).get("NameServers", []),
        "app": app,
        "app_record": bool(app_records),
        # An alias of a CloudFront distribution (with certificates), else of the failover pair to the ALBs.
        "app_on_cloudfront": any(
            r.get("AliasTarget", {}).get("DNSName", "").rstrip(".").endswith(".cloudfront.net") for r in app_records
        ),
    }


def public_zones(route53: Any, deployment: Deployment) -> list[dict[str, Any]]:
    """The public zones roles/dns made for this deployment (tagged with its project and environment)."""
    found = []
    for page in route53.get_paginator("list_hosted_zones").paginate():
        for zone in page["HostedZones"]:
            if zone.get("Config", {}).get("PrivateZone"):
                continue
            zone_id, name = zone["Id"].split("/")[-1], zone["Name"].rstrip(".")
            tags = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id)["ResourceTagSet"]
            tagged = {t["Key"]: t["Value"] for t in tags.get("Tags", [])}
            if (tagged.get("Project"), tagged.get("Environment")) == (deployment.project, deployment.environment):
                found.append(_zone(route53, zone_id, name))
    return found


def load_balancer(elbv2: Any, name: str) -> str | None:
    try:
        (alb,) = elbv2.describe_load_balancers(Names=[name])["LoadBalancers"]
    except Exception as exc:
        if _error_code(exc) == "LoadBalancerNotFound":
            return None
        raise
    return alb["DNSName"]


def shown_endpoint(protocol: str, endpoint: str) -> str:
    """An HTTP(S) subscription's URL without path and query (PagerDuty-style URLs carry their key there)."""
    if protocol in ("http", "https"):
        parts = urlsplit(endpoint)
        return f"{parts.scheme}://{parts.netloc}/..." if parts.path not in ("", "/") or parts.query else endpoint
    return endpoint


def subscriptions(sns: Any, topic_arn: str) -> list[dict[str, str]] | None:
    """The topic's subscriptions with their status, or None when the topic does not exist."""
    out = []
    try:
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
            for sub in page["Subscriptions"]:
                pending = sub["SubscriptionArn"] == PENDING
                out.append(
                    {
                        "protocol": sub["Protocol"],
                        "endpoint": shown_endpoint(sub["Protocol"], sub["Endpoint"]),
                        "status": "pending confirmation" if pending else "confirmed",
                    }
                )
    except Exception as exc:
        if _error_code(exc) == "NotFound":
            return None
        raise
    return out


def collect(session: Any, deployment: Deployment, account: str) -> dict[str, Any]:
    glob = clients(session, "us-east-1")  # CloudFront and Route 53 are global; their API is in us-east-1
    found: dict[str, Any] = {
        "deployment": deployment.prefix,
        "cloudfront": distribution(glob("cloudfront"), f"{deployment.prefix}-cdn"),
        "zones": public_zones(glob("route53"), deployment),
        "regions": {},
    }
    for region in deployment.regions:
        client = clients(session, region)
        name = f"{deployment.prefix}-{region}"
        topic = f"arn:aws:sns:{region}:{account}:{name}-alarms"
        found["regions"][region] = {
            "role": deployment.roles[region],
            "alb_dns_name": load_balancer(client("elbv2"), f"{name}-alb"),
            "alarm_topic": topic,
            "subscriptions": subscriptions(client("sns"), topic),
        }
    return found


def render(found: dict[str, Any], sandbox_edge: str | None = None) -> str:
    lines = [f"Endpoints of {found['deployment']}:"]
    cdn = found["cloudfront"]
    if cdn:
        lines.append(f"  CloudFront: {cdn['url']}  (distribution {cdn['id']}, {cdn['status']})")
        for alias in cdn.get("aliases") or []:
            lines.append(f"  site: https://{alias}  (CloudFront, with its ACM certificate)")
    else:
        lines.append("  CloudFront: not deployed yet")
    if sandbox_edge:
        lines.append(f"  sandbox edge: {sandbox_edge}  (stands for CloudFront and the public domain on this machine)")
    if not found["zones"]:
        lines.append("  public zone: no public hosted zone of it yet")
    for zone in found["zones"]:
        lines.append(f"  public zone: {zone['name']}  (hosted zone {zone['id']})")
        lines.append(f"  name servers: {', '.join(zone['name_servers']) or '-'}")
        lines.append(
            f"    -> delegate {zone['name']} to these name servers at your registrar (or in its parent zone, as NS "
            "records); until then the names below do not resolve on the internet"
        )
        state = "" if zone["app_record"] else "  (no record yet)"
        target = (
            "an alias of CloudFront"
            if zone["app_on_cloudfront"]
            else "Route 53 failover alias to the two ALBs, not CloudFront"
        )
        lines.append(f"  app: {zone['app']}{state}  ({target})")
    for region, info in found["regions"].items():
        lines.append(f"  ALB {region} ({info['role']}): {info['alb_dns_name'] or 'not deployed yet'}")
    lines.append("Alarm subscriptions:")
    for region, info in found["regions"].items():
        topic = info["alarm_topic"].split(":")[-1]
        subs = info["subscriptions"]
        if subs is None:
            lines.append(f"  {region} topic {topic}: not deployed yet")
            continue
        lines.append(f"  {region} topic {topic}:" + ("" if subs else " no subscriptions (nobody hears its alarms)"))
        for sub in subs:
            hint = ""
            if sub["status"] == "pending confirmation":
                hint = (
                    " - check your inbox: AWS Notifications sent a link to confirm"
                    if sub["protocol"] == "email"
                    else " - its owner must confirm it"
                )
            lines.append(f"    {sub['protocol']} {sub['endpoint']}: {sub['status']}{hint}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/endpoints.py", description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--inventory", default="inventories/sandbox/hosts.yml")
    parser.add_argument("--json", action="store_true", help="print what was found as JSON")
    args = parser.parse_args(argv)
    try:
        deployment = read_inventory(args.inventory)
        session, account = connect(deployment)
    except SystemExit as stop:
        if isinstance(stop.code, int):
            raise
        print(f"endpoints: {stop}", file=sys.stderr)
        return 2
    found = collect(session, deployment, account)
    if args.json:
        print(json.dumps(found, indent=1))
        return 0
    edge = None
    if deployment.sandbox:
        from sandbox import config

        edge = config.load().edge
    print(render(found, edge))
    return 0


if __name__ == "__main__":
    sys.exit(main())
