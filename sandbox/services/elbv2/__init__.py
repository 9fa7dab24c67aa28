"""ELBv2: patches.py (moto fidelity), provider.py (API onto the data plane), listener.py (the data plane: listeners,
the Balancer) with rules.py (routing decisions) and proxy.py (connections to targets), health.py, metrics.py."""
