"""CloudWatch Logs: moto fidelity (patches.py)."""
