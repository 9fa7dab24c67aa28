"""ACM: moto fidelity (patches.py: DNS validation, certificates in use)."""
