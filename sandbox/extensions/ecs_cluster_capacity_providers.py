"""DescribeClusters always reports ``capacityProviders`` and ``defaultCapacityProviderStrategy``, as AWS does.

AWS returns both lists for every cluster, empty when none were set. moto omits them unless the
cluster was created with them, and community.aws.ecs_cluster indexes both when it checks an
existing cluster, so its second run fails with a KeyError.
"""

from __future__ import annotations

from typing import Any

from sandbox import patches


def install(_app: Any) -> None:
    from moto.ecs.models import Cluster

    original_init = Cluster.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.capacity_providers is None:
            self.capacity_providers = []
        if self.default_capacity_provider_strategy is None:
            self.default_capacity_provider_strategy = []

    patches.patch(Cluster, "__init__", __init__, owner=__name__)
