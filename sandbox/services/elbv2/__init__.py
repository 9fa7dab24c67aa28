"""ELBv2: patches.py (moto fidelity), provider.py (API onto the data plane), listener.py (listeners, health)."""
