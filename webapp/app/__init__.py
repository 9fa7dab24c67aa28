"""The multi-region web app: FastAPI on Aurora PostgreSQL, aware of its region and of its database's role."""

__version__ = "1.0.0"
