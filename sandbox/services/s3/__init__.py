"""S3: patches.py (moto fidelity), provider.py (object writes onto replication), replication.py."""
