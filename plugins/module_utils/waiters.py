# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for AWS to reach a state, with one deadline rule and one timeout message.

Where botocore ships a waiter for exactly the state a module needs (CloudFront DistributionDeployed,
ECS TasksStopped, ...), run_waiter() runs it: AWS maintains its acceptors. Everything else (global
clusters, S3 replication configurations, anything with a condition of our own) goes through
wait_until(). Both poll until a deadline rather than for a number of attempts, poll a last time at the
deadline, and on expiry raise WaitTimeout, whose message is
"Timeout waiting for <what> (last state: <state>)" so that every module says the same thing.

No AnsibleModule here: callers pass a read function or a botocore waiter and plain values.
"""

from __future__ import annotations

import contextlib
import random
import time

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    import botocore.exceptions


class WaitTimeout(Exception):
    """The deadline passed first. `last` is what the last poll read (a waiter's last response)."""

    def __init__(self, what, last_state, last=None):
        super().__init__(f"Timeout waiting for {what} (last state: {last_state})")
        self.what = what
        self.last_state = last_state
        self.last = last


def wait_until(
    read,
    done,
    what,
    timeout,
    delay=5.0,
    max_delay=None,
    state=str,
    jitter=0.2,
    clock=time.monotonic,
    sleep=time.sleep,
):
    """Call read() until done(value) is true and return that value; WaitTimeout after `timeout` seconds.

    The first read is immediate. Pauses start at `delay` seconds and, when `max_delay` is given, double
    after each poll up to `max_delay` (operations that usually finish quickly are seen finishing quickly,
    long ones are not polled needlessly often). Each pause is shortened at random by up to `jitter` (a
    fraction) so that pollers started together - forks, both regions - drift apart instead of calling
    the API in step; pass jitter=0 where the interval is the user's (a health gate's). No pause runs
    past the deadline, and the last read happens at it. `state(value)` words the last value for the
    timeout message. Exceptions from read() propagate: whether an API error ends the wait is the
    caller's decision, made in read().
    """
    deadline = clock() + timeout
    pause = delay
    while True:
        value = read()
        if done(value):
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(what, state(value), value)
        sleep(min(remaining, pause * (1 - jitter * random.random())))  # noqa: S311 - spreading polls, not secrets
        if max_delay is not None:
            pause = min(pause * 2, max_delay)


def run_waiter(waiter, what, timeout, delay, state, **params):
    """Run one of botocore's waiters (client.get_waiter(name)) with `params` until `timeout` seconds.

    botocore counts attempts, not seconds: MaxAttempts is derived from timeout and delay so that the
    last poll happens at the deadline, as with wait_until(). On expiry raises WaitTimeout, its state
    being state(last response) and its `last` the last response. An error response the waiter does
    not expect is raised as the ClientError the call itself raises, so modules handle it as they
    handle any failed call (fail_json_aws, error codes).
    """
    attempts = int(timeout // delay) + 1 if delay > 0 else 1
    try:
        waiter.wait(WaiterConfig={"Delay": delay, "MaxAttempts": max(attempts, 1)}, **params)
    except botocore.exceptions.WaiterError as e:
        last = e.last_response or {}
        if "Error" in last:
            raise botocore.exceptions.ClientError(last, waiter.config.operation) from None
        if e.kwargs.get("reason", "").startswith("Max attempts exceeded"):
            raise WaitTimeout(what, state(last), last) from None
        raise
