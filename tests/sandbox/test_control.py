"""The sandbox's control surface and regional outages at the API (sandbox/control.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from sandbox import cli


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - loopback
        return json.load(resp)


def test_describe_names_the_edge_and_routes(sandbox):
    info = _get(f"{sandbox.endpoint}/_sandbox/")
    assert info["edge"] == sandbox.edge
    assert "POST /_sandbox/outage" in info["routes"] and "POST /_sandbox/restore" in info["routes"]
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        _get(f"{sandbox.endpoint}/_sandbox/no-such-route")
    assert excinfo.value.code == 404


def test_unknown_region_is_refused_with_the_choices(sandbox):
    with pytest.raises(cli.SandboxError, match=r"unknown region 'eu-west-9'.*us-east-1, us-west-2"):
        cli._control(sandbox, "outage", {"region": "eu-west-9"})
    with pytest.raises(cli.SandboxError, match="name the region"):
        cli._control(sandbox, "outage", {})


def test_dark_region_answers_503_and_others_keep_working(sandbox, aws):

    assert cli.outage(sandbox, "us-east-1") == "region us-east-1 is dark"
    try:
        assert "already" in cli.outage(sandbox, "us-east-1")
        with pytest.raises(ClientError) as excinfo:
            aws("sqs", "us-east-1").list_queues()
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert "dark" in str(excinfo.value)
        aws("ec2", "us-west-2").describe_vpcs()  # the other region answers
        aws("route53").list_hosted_zones()  # global services answer (signed for us-east-1)
        aws("iam").list_roles()
    finally:
        assert cli.restore(sandbox, "us-east-1") == "region us-east-1 restored"
    aws("ec2", "us-east-1").describe_vpcs()
    assert "was not dark" in cli.restore(sandbox, "us-east-1")
