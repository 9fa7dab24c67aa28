# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One boto3 client per (service, region), made on first use.

A module that reaches several regions must not make its clients up front: in a failover one region
may be down, and making (or calling) a client for it would fail or hang. Making each client when a call
first needs it means only the regions a task names are ever contacted, and each client is made once.
"""

from __future__ import annotations


class ClientCache:
    """Clients by (service, region); `make(service, region)` builds one (e.g. AnsibleAWSModule.client
    with the module's retry decorator). `made` pre-seeds clients, which is how unit tests pass fakes."""

    def __init__(self, make, made=None):
        self._make = make
        self._made = dict(made or {})

    def get(self, service, region):
        key = (service, region)
        if key not in self._made:
            self._made[key] = self._make(service, region)
        return self._made[key]
