"""Route 53: provider.py (health-check API, TestDNSAnswer), checker.py (probes and the resolver)."""
