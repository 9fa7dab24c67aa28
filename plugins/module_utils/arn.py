# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading ARNs.

Modules that reach several regions (a failover, a gate over both regions) must call each resource in
the region it lives in, and the ARN is where that region is written; getting it from the ARN means the
caller need not repeat it in a separate option.

Plain functions on strings: no boto3, no AnsibleModule.
"""

from __future__ import annotations


def region_from_arn(arn, default=""):
    """The region field of an ARN (arn:partition:service:region:account:resource).

    Returns `default` when `arn` is not an ARN, or when its region field is empty, as it is for
    global resources (an Aurora global cluster, an IAM role, a CloudFront distribution).
    """
    parts = (arn or "").split(":", 5)
    if len(parts) == 6 and parts[0] == "arn" and parts[3]:
        return parts[3]
    return default
