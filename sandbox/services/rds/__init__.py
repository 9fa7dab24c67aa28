"""RDS: patches.py (moto fidelity), provider.py (API onto the engine), engine.py (PostgreSQL nodes, failover)."""
