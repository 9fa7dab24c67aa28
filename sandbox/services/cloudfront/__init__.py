"""CloudFront: moto fidelity (patches.py); the distribution is served by sandbox/edge/."""
