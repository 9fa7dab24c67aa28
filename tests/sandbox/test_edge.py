"""The edge serves the sandbox's CloudFront distribution as CloudFront would (sandbox/edge/).

A distribution shaped like roles/cdn's (an ALB origin group, a write origin that is a Route 53 failover
record, a static S3 origin behind origin access control) is served from local HTTP servers standing
for the two regions' ALBs, published in the sandbox's name map.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox import runtime
from sandbox.config import SandboxConfig
from sandbox.edge import server as edge
from tests.support import sandbox_control as control

ACCOUNT = "123456789012"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
READS = ["GET", "HEAD", "OPTIONS"]
ALL = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
CNAME_TTL = 5
CLOUDFRONT_ZONE = "Z2FDTNDATAQYW2"  # the hosted zone id of every CloudFront alias target


class Origin:
    """A local HTTP/1.1 server standing for a region's ALB: answers JSON naming itself and what it got."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.status = 200  # for every path but the health check's
        self.health_status = 200
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                seen = {
                    "server": origin.label,
                    "method": self.command,
                    "path": self.path,
                    "host": self.headers.get("Host"),
                    "x_forwarded_for": self.headers.get("X-Forwarded-For"),
                    "via": self.headers.get("Via"),
                    "x_test": self.headers.get("X-Test"),
                    "body": body,
                }
                health = self.path.startswith("/health/")
                if not health:
                    origin.requests.append(seen)
                    time.sleep(origin.delay)
                status = origin.health_status if health else origin.status
                payload = json.dumps(seen).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = _answer

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def served(self, method: str) -> int:
        return sum(1 for r in self.requests if r["method"] == method)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.05)


def _custom(origin_id: str, domain: str, attempts: int, connect: int, read: int) -> dict[str, Any]:
    return {
        "Id": origin_id,
        "DomainName": domain,
        "ConnectionAttempts": attempts,
        "ConnectionTimeout": connect,
        "CustomOriginConfig": {
            "HTTPPort": 80,
            "HTTPSPort": 443,
            "OriginProtocolPolicy": "http-only",
            "OriginReadTimeout": read,
            "OriginKeepaliveTimeout": 5,
        },
    }


def _behaviour(target: str, methods: list[str], path: str | None = None) -> dict[str, Any]:
    behaviour: dict[str, Any] = {
        "TargetOriginId": target,
        "ViewerProtocolPolicy": "https-only",
        "AllowedMethods": {"Quantity": len(methods), "Items": methods},
        "CachePolicyId": CACHING_DISABLED,
        "OriginRequestPolicyId": ALL_VIEWER_EXCEPT_HOST,
    }
    if path:
        behaviour["PathPattern"] = path
    return behaviour


@pytest.fixture(scope="module")
def site(sandbox: SandboxConfig) -> Iterator[dict[str, Any]]:
    """Two "ALBs", a zone with failover records and a health check, a bucket, and the distribution."""
    import boto3

    from sandbox.config import ACCESS_KEY_ID, SECRET_ACCESS_KEY

    def aws(service: str, region: str = "us-east-1") -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=sandbox.endpoint,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    suffix = uuid.uuid4().hex[:8]
    primary, secondary = Origin("primary"), Origin("secondary")
    names = {
        "primary": f"edge-p-{suffix}.us-east-1.elb.amazonaws.com",
        "secondary": f"edge-s-{suffix}.us-west-2.elb.amazonaws.com",
    }
    control(sandbox, "POST", "route53", {"speedup": 20})
    for key, server in (("primary", primary), ("secondary", secondary)):
        control(sandbox, "POST", "names", {"name": names[key], "port": 80, "local_port": server.port})
    route53, s3, cloudfront = aws("route53"), aws("s3"), aws("cloudfront")
    zone_name = f"edge-{suffix}.example.com"
    zone_id = route53.create_hosted_zone(Name=zone_name, CallerReference=suffix)["HostedZone"]["Id"].split("/")[-1]
    check_id = route53.create_health_check(
        CallerReference=suffix,
        HealthCheckConfig={
            "Type": "HTTP",
            "FullyQualifiedDomainName": names["primary"],
            "Port": 80,
            "ResourcePath": "/health/ready",
            "RequestInterval": 10,
            "FailureThreshold": 1,
        },
    )["HealthCheck"]["Id"]
    records = []
    for role, key in (("PRIMARY", "primary"), ("SECONDARY", "secondary")):
        alias: dict[str, Any] = {
            "Name": f"origin.{zone_name}",
            "Type": "A",
            "SetIdentifier": key,
            "Failover": role,
            "AliasTarget": {
                "HostedZoneId": "Z35SXDOTRQ7X7K",
                "DNSName": f"dualstack.{names[key]}.",
                "EvaluateTargetHealth": False,
            },
        }
        cname: dict[str, Any] = {
            "Name": f"cname.{zone_name}",
            "Type": "CNAME",
            "SetIdentifier": key,
            "Failover": role,
            "TTL": CNAME_TTL,
            "ResourceRecords": [{"Value": names[key]}],
        }
        if role == "PRIMARY":
            alias["HealthCheckId"] = cname["HealthCheckId"] = check_id
        records += [alias, cname]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in records]}
    )
    bucket = f"edge-static-{suffix}"
    s3.create_bucket(Bucket=bucket)
    # Before the policy: its DenyInsecureTransport would refuse this plain-HTTP client, as S3 would.
    s3.put_object(Bucket=bucket, Key="static/app.css", Body=b"body { color: teal }", ContentType="text/css")
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudfront.amazonaws.com"},
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                        "Condition": {"StringEquals": {"AWS:SourceAccount": ACCOUNT}},
                    },
                ],
            }
        ),
    )
    oac = cloudfront.create_origin_access_control(
        OriginAccessControlConfig={
            "Name": f"edge-{suffix}",
            "SigningProtocol": "sigv4",
            "SigningBehavior": "always",
            "OriginAccessControlOriginType": "s3",
        }
    )["OriginAccessControl"]["Id"]
    host = f"app.{zone_name}"
    origins = [
        _custom("primary-alb", names["primary"], 1, 2, 1),
        _custom("secondary-alb", names["secondary"], 1, 2, 8),
        _custom("write-origin", f"origin.{zone_name}", 2, 3, 30),
        _custom("cname-origin", f"cname.{zone_name}", 1, 2, 8),
        {
            "Id": "static-bucket",
            "DomainName": f"{bucket}.s3.us-east-1.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""},
            "OriginAccessControlId": oac,
        },
    ]
    behaviours = [
        _behaviour("static-bucket", ["GET", "HEAD"], "/static/*"),
        _behaviour("app-failover", READS, "/api/status"),
        _behaviour("cname-origin", ALL, "/cname/*"),
        _behaviour("write-origin", ALL, "/api/*"),
    ]
    config = {
        "CallerReference": f"edge-{suffix}",
        "Aliases": {"Quantity": 1, "Items": [host]},
        "Comment": f"edge test {suffix}",
        "Enabled": True,
        "Origins": {"Quantity": len(origins), "Items": origins},
        "OriginGroups": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "app-failover",
                    "FailoverCriteria": {"StatusCodes": {"Quantity": 4, "Items": [500, 502, 503, 504]}},
                    "Members": {"Quantity": 2, "Items": [{"OriginId": "primary-alb"}, {"OriginId": "secondary-alb"}]},
                }
            ],
        },
        "DefaultCacheBehavior": _behaviour("app-failover", READS),
        "CacheBehaviors": {"Quantity": len(behaviours), "Items": behaviours},
    }
    dist = cloudfront.create_distribution(DistributionConfig=config)["Distribution"]
    # The viewer's name leads to the distribution, as roles/dns's alias does: the edge serves a name in a
    # sandbox zone only then (tests at the end of this file).
    viewer_records = [
        {
            "Name": host,
            "Type": "A",
            "AliasTarget": {
                "HostedZoneId": CLOUDFRONT_ZONE,
                "DNSName": f"{dist['DomainName']}.",
                "EvaluateTargetHealth": False,
            },
        },
        # Leads to the distribution too, but the distribution does not list it: CloudFront's 403.
        {
            "Name": f"unlisted.{zone_name}",
            "Type": "CNAME",
            "TTL": 60,
            "ResourceRecords": [{"Value": dist["DomainName"]}],
        },
        # An alias to the name above, in the same zone: followed as Route 53 follows it.
        {
            "Name": f"chain.{zone_name}",
            "Type": "A",
            "AliasTarget": {"HostedZoneId": zone_id, "DNSName": f"{host}.", "EvaluateTargetHealth": False},
        },
    ]
    records += viewer_records
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in viewer_records]},
    )
    yield {
        "sandbox": sandbox,
        "aws": aws,
        "host": host,
        "zone": zone_name,
        "zone_id": zone_id,
        "names": names,
        "primary": primary,
        "secondary": secondary,
        "check_id": check_id,
        "distribution": dist["Id"],
        "domain": dist["DomainName"],
        "distribution_comment_word": suffix,
        "bucket": bucket,
    }
    current = cloudfront.get_distribution_config(Id=dist["Id"])
    disabled = {**current["DistributionConfig"], "Enabled": False}
    etag = cloudfront.update_distribution(Id=dist["Id"], IfMatch=current["ETag"], DistributionConfig=disabled)["ETag"]
    cloudfront.delete_distribution(Id=dist["Id"], IfMatch=etag)
    with contextlib.suppress(ClientError):
        cloudfront.delete_origin_access_control(Id=oac, IfMatch=cloudfront.get_origin_access_control(Id=oac)["ETag"])
    s3.delete_bucket_policy(Bucket=bucket)
    s3.delete_object(Bucket=bucket, Key="static/app.css")
    s3.delete_bucket(Bucket=bucket)
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": r} for r in records]}
    )
    route53.delete_hosted_zone(Id=zone_id)
    route53.delete_health_check(HealthCheckId=check_id)
    for key in names:
        control(sandbox, "POST", "names", {"name": names[key], "port": 80, "local_port": None})
    control(sandbox, "POST", "route53", {"speedup": 1})
    primary.close()
    secondary.close()


@pytest.fixture(autouse=True)
def healthy_origins(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with both origins answering and published, and ends leaving them so."""
    if "site" not in request.fixturenames:
        yield
        return
    site = request.getfixturevalue("site")
    yield
    for key in ("primary", "secondary"):
        server = site[key]
        server.status, server.health_status, server.delay = 200, 200, 0.0
        control(site["sandbox"], "POST", "names", {"name": site["names"][key], "port": 80, "local_port": server.port})

    def primary_healthy() -> bool:
        checks = control(site["sandbox"], "GET", "route53")["health_checks"]
        return any(c["id"] == site["check_id"] and c["healthy"] for c in checks)

    wait_for(primary_healthy, what="the primary's health check healthy again")


def call(
    site: dict[str, Any],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    port = int(site["sandbox"].edge.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"Host": site["host"], **(headers or {})})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def served_by(raw: bytes) -> str:
    return json.loads(raw)["server"]


def test_get_fails_over_on_the_groups_status_codes(site: dict[str, Any]) -> None:
    status, headers, body = call(site, "GET", "/")
    assert status == 200 and served_by(body) == "primary"
    assert headers["x-cache"] == "Miss from cloudfront"
    assert headers["via"].endswith(".cloudfront.net (CloudFront)") and headers["x-amz-cf-pop"]
    site["primary"].status = 503
    before = site["primary"].served("GET")
    status, headers, body = call(site, "GET", "/api/status?verbose=1")
    assert status == 200 and served_by(body) == "secondary"
    assert json.loads(body)["path"] == "/api/status?verbose=1"
    assert site["primary"].served("GET") == before + 1  # asked first, then failed over
    # A status that is not a failover criterion is the viewer's answer.
    site["primary"].status = 404
    status, headers, body = call(site, "GET", "/")
    assert status == 404 and served_by(body) == "primary" and headers["x-cache"] == "Error from cloudfront"


def test_get_fails_over_when_the_primary_refuses_or_does_not_resolve(site: dict[str, Any]) -> None:
    control(site["sandbox"], "POST", "names", {"name": site["names"]["primary"], "port": 80, "local_port": dead_port()})
    status, _headers, body = call(site, "GET", "/api/status")
    assert status == 200 and served_by(body) == "secondary"
    status, _headers, body = call(site, "HEAD", "/")
    assert status == 200 and body == b""
    control(site["sandbox"], "POST", "names", {"name": site["names"]["primary"], "port": 80, "local_port": None})
    status, _headers, body = call(site, "OPTIONS", "/")
    assert status == 200 and served_by(body) == "secondary"
    # Both gone: CloudFront's own 502 page.
    control(site["sandbox"], "POST", "names", {"name": site["names"]["secondary"], "port": 80, "local_port": None})
    status, headers, body = call(site, "GET", "/")
    assert status == 502 and b"The request could not be satisfied" in body
    assert headers["x-cache"] == "Error from cloudfront" and headers["server"] == "CloudFront"


def test_get_fails_over_on_a_read_timeout(site: dict[str, Any]) -> None:
    site["primary"].delay = 3  # the primary-alb origin's OriginReadTimeout is 1 s
    started = time.monotonic()
    status, _headers, body = call(site, "GET", "/")
    took = time.monotonic() - started
    assert status == 200 and served_by(body) == "secondary"
    assert 1 <= took < 3, took


def test_writes_are_never_failed_over(site: dict[str, Any]) -> None:
    status, _headers, body = call(site, "POST", "/api/data", b'{"key": "a"}', {"Content-Type": "application/json"})
    assert status == 200 and served_by(body) == "primary"
    # The primary answers 503 (its health check still passes, so Route 53 keeps answering it).
    site["primary"].status = 503
    status, _headers, body = call(site, "POST", "/api/data", b'{"key": "b"}')
    assert status == 503 and served_by(body) == "primary"
    # A POST to a path that reads through the origin group is refused by CloudFront itself.
    status, _headers, body = call(site, "POST", "/api/status", b"{}")
    assert status == 403 and b"not configured to allow the HTTP request method" in body
    assert site["secondary"].served("POST") == 0


def test_a_dead_write_origin_is_a_502_not_a_retry_elsewhere(site: dict[str, Any]) -> None:
    # The write origin's answer (the primary ALB) is cached by the edge for 60 s: the dead primary gets the POST.
    assert call(site, "POST", "/api/data", b"{}")[0] == 200
    control(site["sandbox"], "POST", "names", {"name": site["names"]["primary"], "port": 80, "local_port": dead_port()})
    status, headers, body = call(site, "POST", "/api/data", b'{"key": "c"}')
    assert status == 502 and b"CloudFront wasn't able to connect to the origin" in body
    assert headers["x-cache"] == "Error from cloudfront"
    assert site["secondary"].served("POST") == 0


def test_the_write_origins_answer_is_cached_for_its_ttl(site: dict[str, Any]) -> None:
    route53 = site["aws"]("route53")
    record = f"cname.{site['zone']}"

    def dns() -> list[str]:
        return route53.test_dns_answer(HostedZoneId=site["zone_id"], RecordName=record, RecordType="CNAME")[
            "RecordData"
        ]

    assert dns() == [site["names"]["primary"]]
    resolved_at = time.monotonic()
    status, _headers, body = call(site, "POST", "/cname/data", b"{}")
    assert status == 200 and served_by(body) == "primary"
    cached = control(site["sandbox"], "GET", "edge")["dns_cache"][record]
    assert cached["ttl"] == CNAME_TTL and 0 < cached["ttl_left_s"] <= CNAME_TTL
    site["primary"].health_status = 503  # Route 53 fails over; the app still answers writes
    wait_for(lambda: dns() == [site["names"]["secondary"]], what="Route 53 answering the secondary")
    flipped_at = time.monotonic()
    assert flipped_at - resolved_at < CNAME_TTL - 1, "Route 53 took too long to fail over for this test"
    status, _headers, body = call(site, "POST", "/cname/data", b"{}")
    assert served_by(body) == "primary", "the edge must keep the cached answer until its TTL runs out"
    time.sleep(max(0.0, resolved_at + CNAME_TTL + 0.2 - time.monotonic()))
    status, _headers, body = call(site, "POST", "/cname/data", b"{}")
    assert status == 200 and served_by(body) == "secondary"
    # Alias records to ALBs carry the ELB's 60 s TTL.
    call(site, "POST", "/api/data", b"{}")
    assert control(site["sandbox"], "GET", "edge")["dns_cache"][f"origin.{site['zone']}"]["ttl"] == 60
    site["primary"].health_status = 200
    wait_for(lambda: dns() == [site["names"]["primary"]], what="Route 53 answering the primary again")


def test_behaviours_by_path_and_methods(site: dict[str, Any]) -> None:
    status, _headers, body = call(
        site, "PUT", "/api/data/7", b'{"v": 1}', {"X-Test": "passed through", "X-Forwarded-For": "203.0.113.9"}
    )
    seen = json.loads(body)
    assert status == 200 and seen["server"] == "primary" and seen["method"] == "PUT" and seen["body"] == '{"v": 1}'
    assert seen["host"] == f"origin.{site['zone']}"  # AllViewerExceptHostHeader: the origin's own name
    assert seen["x_test"] == "passed through"
    assert seen["x_forwarded_for"] == "203.0.113.9, 127.0.0.1"
    assert seen["via"].endswith("(CloudFront)")
    # The default behaviour reads through the group (GET/HEAD/OPTIONS only).
    for method in ("POST", "DELETE", "PATCH"):
        status, _headers, body = call(site, method, "/somewhere", b"{}")
        assert status == 403, method
        assert b"This distribution is not configured to allow the HTTP request method" in body
    status, _headers, _body = call(site, "DELETE", "/static/app.css")
    assert status == 403


def test_s3_origin_serves_objects_as_s3_with_oac_would(site: dict[str, Any]) -> None:
    status, headers, body = call(site, "GET", "/static/app.css")
    assert status == 200 and body == b"body { color: teal }"
    assert headers["content-type"] == "text/css" and headers["etag"] and headers["x-cache"] == "Miss from cloudfront"
    status, headers, body = call(site, "HEAD", "/static/app.css")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(b"body { color: teal }"))
    # No s3:ListBucket for CloudFront: a missing key is AccessDenied, not NoSuchKey, as S3 answers.
    status, _headers, body = call(site, "GET", "/static/missing.css")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    s3 = site["aws"]("s3")
    policy = s3.get_bucket_policy(Bucket=site["bucket"])["Policy"]
    s3.delete_bucket_policy(Bucket=site["bucket"])
    try:
        wait_for(lambda: call(site, "GET", "/static/app.css")[0] == 403, what="403 without the bucket policy")
    finally:
        s3.put_bucket_policy(Bucket=site["bucket"], Policy=policy)


def test_keep_alive_connection_serves_many_requests(site: dict[str, Any]) -> None:
    port = int(site["sandbox"].edge.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(20):
            conn.request("GET", f"/api/status?i={i}", headers={"Host": site["host"]})
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["path"] == f"/api/status?i={i}"
    finally:
        conn.close()


def test_control_route_describes_what_is_served(site: dict[str, Any]) -> None:
    call(site, "POST", "/api/data", b"{}")
    described = control(site["sandbox"], "GET", "edge")
    assert described["edge"] == site["sandbox"].edge
    assert site["distribution"] in [d["id"] for d in described["distributions"]]
    assert described["stats"]["requests"] > 0
    if described["serving"]["id"] == site["distribution"]:  # the newest enabled distribution of the session
        write = next(o for o in described["origins"] if o["id"] == "write-origin")
        assert write["route53_record"] is True
        assert write["route53_answer_now"]["answer"] == [site["names"]["primary"]]
        assert write["local_listener"] == f"127.0.0.1:{site['primary'].port}"


# -- the names viewers use ----------------------------------------------------------------------------


def test_a_name_in_a_sandbox_zone_is_served_only_by_the_distribution_it_leads_to(site: dict[str, Any]) -> None:
    status, headers, body = call(site, "GET", "/", headers={"Host": f"{site['host'].upper()}.:80"})
    assert status == 200 and served_by(body) == "primary"
    assert headers["x-cache"] == "Miss from cloudfront"


def test_a_name_the_distribution_does_not_list_is_cloudfronts_bad_request(site: dict[str, Any]) -> None:
    zone = site["zone"]
    before = len(site["primary"].requests) + len(site["secondary"].requests)
    for name in (f"unlisted.{zone}", f"chain.{zone}"):  # a CNAME to the distribution; an alias chain to it
        status, headers, body = call(site, "GET", "/", headers={"Host": name})
        assert status == 403, name
        assert b"<TITLE>ERROR: The request could not be satisfied</TITLE>" in body
        assert b"<H1>403 ERROR</H1>" in body and b"Bad request." in body
        assert headers["x-cache"] == "Error from cloudfront" and headers["server"] == "CloudFront"
    assert len(site["primary"].requests) + len(site["secondary"].requests) == before  # no origin was asked


def test_a_name_that_does_not_lead_to_a_distribution_is_misdirected(site: dict[str, Any]) -> None:
    zone = site["zone"]
    before = len(site["primary"].requests) + len(site["secondary"].requests)
    # No record at all; a record that leads to an ALB, not to CloudFront.
    for name, says in ((f"nothing.{zone}", "NXDOMAIN"), (f"origin.{zone}", site["names"]["primary"])):
        status, headers, body = call(site, "GET", "/api/status", headers={"Host": f"{name}:8080"})
        assert status == 421, name
        text = body.decode()
        assert text.startswith(f"421 Misdirected Request: {name} does not resolve to a CloudFront distribution")
        assert "in the sandbox's Route 53" in text and says in text
        assert headers["content-type"] == "text/plain"
    assert len(site["primary"].requests) + len(site["secondary"].requests) == before


def test_names_outside_the_sandbox_zones_keep_the_host_rules(site: dict[str, Any]) -> None:
    # The distribution's own domain name and a word of its Comment name it whatever Route 53 holds.
    for host in (site["domain"], site["domain"].upper() + ":443", site["distribution_comment_word"]):
        status, _headers, body = call(site, "GET", "/", headers={"Host": host})
        assert status == 200 and served_by(body) == "primary", host
    # 127.0.0.1:<port> and localhost: the newest enabled distribution, whichever it is (never a refusal).
    for host in (site["sandbox"].edge.split("//", 1)[1], "localhost"):
        status, _headers, body = call(site, "GET", "/", headers={"Host": host})
        assert status not in (403, 421) and b"Misdirected" not in body, host


# -- in process: the rules, without a sandbox ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/static/*", "/static/app.css", True),
        ("/static/*", "/static/a/b/c.js", True),
        ("/static/*", "/staticx", False),
        ("/static/*", "/Static/app.css", False),  # case-sensitive
        ("static/*", "/static/app.css", True),  # the leading / is optional
        ("/api/status", "/api/status", True),
        ("/api/status", "/api/status/x", False),
        ("*.jpg", "/images/cat.jpg", True),
        ("/a?c", "/abc", True),
        ("/a?c", "/ac", False),
        ("/[x]/*", "/[x]/y", True),  # brackets are literal, unlike fnmatch
        ("/[x]/*", "/x/y", False),
    ],
)
def test_path_patterns_follow_cloudfronts_wildcards(pattern: str, path: str, matches: bool) -> None:
    assert bool(edge.path_regex(pattern).match(path)) is matches


def _group_dist(primary: str, secondary: str, methods: list[str]) -> edge.DistSpec:
    def origin(origin_id: str, domain: str) -> edge.OriginSpec:
        return edge.OriginSpec(
            id=origin_id,
            domain=domain,
            path="",
            s3=False,
            protocol_policy="http-only",
            http_port=80,
            https_port=443,
            attempts=1,
            connect_timeout=1,
            read_timeout=2,
            keepalive_timeout=5,
            custom_headers=(),
            oac_id="",
            oai="",
        )

    default = edge.BehaviourSpec("*", None, "group", frozenset(methods), "allow-all", False)
    return edge.DistSpec(
        id="EDGETEST",
        arn=f"arn:aws:cloudfront::{ACCOUNT}:distribution/EDGETEST",
        account_id=ACCOUNT,
        domain="d111111abcdef8.cloudfront.net",
        aliases=(),
        comment="",
        enabled=True,
        status="Deployed",
        origins={"p": origin("p", primary), "s": origin("s", secondary)},
        groups={"group": edge.GroupSpec("group", "p", "s", frozenset({503}))},
        behaviours=[],
        default=default,
        via="1.1 0123456789abcdef0123456789abcdef.cloudfront.net (CloudFront)",
    )


def test_a_group_never_replays_a_write_even_if_a_behaviour_allowed_it(tmp_path: Path) -> None:
    """AWS refuses such a behaviour (see sandbox/services/cloudfront/patches.py); the edge does not rely on that."""
    primary, secondary = Origin("primary"), Origin("secondary")
    rt = runtime.Runtime(state_dir=tmp_path, api_port=0, edge_port=0)
    rt.publish("p.example", 80, primary.port)
    rt.publish("s.example", 80, secondary.port)
    server = edge.Edge(rt)
    dist = _group_dist("p.example", "s.example", ALL)
    server.select = lambda _host: dist  # type: ignore[method-assign]
    primary.status = 503
    try:

        async def scenario() -> tuple[edge.Response, edge.Response]:
            post = await server.handle("POST", "/x", [("Host", "h")], b"{}", "127.0.0.1")
            get = await server.handle("GET", "/x", [("Host", "h")], b"", "127.0.0.1")
            server.pool.close_all()
            return post, get

        post, get = asyncio.run(scenario())
        assert post.status == 503 and json.loads(post.body)["server"] == "primary"
        assert get.status == 200 and json.loads(get.body)["server"] == "secondary"
        assert secondary.served("POST") == 0
    finally:
        primary.close()
        secondary.close()


def test_no_distribution_is_a_503_that_says_what_to_do(tmp_path: Path) -> None:
    server = edge.Edge(runtime.Runtime(state_dir=tmp_path, api_port=0, edge_port=0))
    server.select = lambda _host: None  # type: ignore[method-assign]
    response = asyncio.run(server.handle("GET", "/", [("Host", "x")], b"", "127.0.0.1"))
    assert response.status == 503 and b"make deploy" in response.body


def test_bucket_policy_evaluation() -> None:
    policy = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudfront.amazonaws.com"},
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::b/*",
                    "Condition": {"StringEquals": {"AWS:SourceArn": "arn:aws:cloudfront::1:distribution/D"}},
                },
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/private/*"},
            ]
        }
    ).encode()
    ctx = {"aws:sourcearn": "arn:aws:cloudfront::1:distribution/D", "aws:sourceaccount": "1"}
    assert edge.bucket_policy_allows(policy, "s3:GetObject", "arn:aws:s3:::b/x.css", ctx, True, "")
    assert not edge.bucket_policy_allows(policy, "s3:GetObject", "arn:aws:s3:::b/private/x", ctx, True, "")
    assert not edge.bucket_policy_allows(policy, "s3:GetObject", "arn:aws:s3:::b/x.css", ctx, False, "")  # no OAC
    other = {**ctx, "aws:sourcearn": "arn:aws:cloudfront::1:distribution/OTHER"}
    assert not edge.bucket_policy_allows(policy, "s3:GetObject", "arn:aws:s3:::b/x.css", other, True, "")
    assert not edge.bucket_policy_allows(policy, "s3:ListBucket", "arn:aws:s3:::b", ctx, True, "")
