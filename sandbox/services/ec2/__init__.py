"""EC2: moto fidelity (patches.py)."""
