"""One package per AWS service: patches.py (moto fidelity) and, for the services the sandbox runs,
provider.py (the API calls onto the live engine, the control routes) beside the engine modules."""
