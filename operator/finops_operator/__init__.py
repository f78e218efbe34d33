"""finops-operator: find cloud waste in Kubernetes and fix it through reviewed pull requests."""

__version__ = "0.1.0"
