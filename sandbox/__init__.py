"""The project's sandbox: a local AWS (moto in server mode, plus extensions for
the fidelity moto lacks) that the real playbooks run against with no AWS account.

Everything listens on loopback only. See docs/sandbox.md.
"""
