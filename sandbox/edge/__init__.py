"""The edge: the public entry point standing for CloudFront (provider.py installs, server.py serves)."""
