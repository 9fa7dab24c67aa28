"""SNS: moto fidelity for subscription confirmation (patches.py) and real deliveries (provider.py)."""
