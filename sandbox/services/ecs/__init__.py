"""ECS: patches.py (moto fidelity), provider.py (API onto the scheduler), scheduler.py (tasks), containers.py."""
