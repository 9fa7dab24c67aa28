"""KMS: moto fidelity (patches.py)."""
