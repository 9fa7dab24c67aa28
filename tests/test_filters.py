"""The address filters the networking role and validation use."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from tests.support import REPO_ROOT, load_module_file

network = load_module_file(REPO_ROOT / "plugins" / "filter" / "network.py")
cidr_subnet, cidrs_overlap, is_cidr = network.cidr_subnet, network.cidrs_overlap, network.is_cidr


@pytest.mark.parametrize(
    ("prefix", "newbits", "netnum", "expected"),
    [
        ("10.10.0.0/16", 4, 0, "10.10.0.0/20"),
        ("10.10.0.0/16", 4, 2, "10.10.32.0/20"),
        ("10.10.0.0/16", 4, 8, "10.10.128.0/20"),
        ("10.10.0.0/16", 8, 255, "10.10.255.0/24"),
    ],
)
def test_cidr_subnet_matches_terraform(prefix, newbits, netnum, expected):
    assert cidr_subnet(prefix, newbits, netnum) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("10.10.0.1/16", 4, 0), "not a network in CIDR form"),
        (("10.10.0.0/28", 8, 0), "no room"),
        (("10.10.0.0/16", 4, 16), "outside 0..15"),
    ],
)
def test_cidr_subnet_rejects_bad_input(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        cidr_subnet(*args)


def test_overlap_and_validity():
    assert cidrs_overlap("10.10.0.0/16", "10.10.128.0/17")
    assert not cidrs_overlap("10.10.0.0/16", "10.20.0.0/16")
    assert is_cidr("10.10.0.0/16")
    assert not is_cidr("10.10.0.1/16")
    assert not is_cidr("10.10.0.0")
    assert not is_cidr(True)


# --- failover report figures (plugins/filter/failover.py) ---------------------------------------------

failover_filters = load_module_file(REPO_ROOT / "plugins" / "filter" / "failover.py")


def test_writerless_seconds_from_the_request_to_the_new_writer() -> None:
    timeline = [
        {"elapsed_s": 0.0, "event": "no operation running; writer east"},
        {"elapsed_s": 0.4, "event": "SwitchoverGlobalCluster requested for west"},
        {"elapsed_s": 1.5, "event": "operation switching-over"},
        {"elapsed_s": 7.9, "event": "operation finished; writer west; east pending-resync"},
    ]
    arn = "arn:aws:rds:us-west-2:123456789012:cluster:west"
    assert failover_filters.failover_writerless_seconds(timeline, arn) == 7.5
    assert failover_filters.failover_writerless_seconds(timeline[:3], arn) is None, "never became the writer"
    assert failover_filters.failover_writerless_seconds(timeline[:1], arn) is None, "nothing was requested"


def test_time_plus_says_until_when_the_old_answer_may_be_cached() -> None:
    assert failover_filters.failover_time_plus("2026-12-02T14:50:01.250Z", 60) == "2026-12-02T14:51:01Z"
    assert failover_filters.failover_time_plus("2026-12-31T23:59:30.000Z", "60") == "2027-01-01T00:00:30Z"
    assert failover_filters.failover_time_plus("", 60) == "", "no traffic move, no deadline"


def _global(*members: tuple[str, bool]) -> list[dict]:
    return [
        {
            "global_cluster_members": [
                {"db_cluster_arn": f"arn:aws:rds:{region}:123456789012:cluster:app-{region}", "is_writer": writer}
                for region, writer in members
            ]
        }
    ]


def test_traffic_follows_the_writer_aws_reports() -> None:
    regions = ["us-east-1", "us-west-2"]
    traffic = failover_filters.traffic_regions
    assert traffic(_global(("us-east-1", False), ("us-west-2", True)), regions, "us-east-1") == [
        "us-west-2",
        "us-east-1",
    ]
    assert traffic(_global(("us-east-1", True), ("us-west-2", False)), regions, "us-east-1") == regions
    # No global database (first deploy, teardown), or a writer-less one mid-failover: the inventory decides.
    assert traffic([], regions, "us-east-1") == regions
    assert traffic(_global(("us-east-1", False), ("us-west-2", False)), regions, "us-west-2") == [
        "us-west-2",
        "us-east-1",
    ]
    # A writer in a region this inventory does not manage does not take its traffic.
    assert traffic(_global(("eu-west-1", True), ("us-west-2", False)), regions, "us-east-1") == regions


def test_traffic_regions_refuses_a_primary_outside_the_inventory() -> None:
    with pytest.raises(AnsibleFilterError, match="'eu-west-1' is not one of"):
        failover_filters.traffic_regions([], ["us-east-1", "us-west-2"], "eu-west-1")
