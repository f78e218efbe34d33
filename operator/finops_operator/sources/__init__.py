"""Adapters to the systems the operator reads: Kubernetes, Prometheus, AWS.

Each adapter is a small module at the edge of the program: it speaks one
protocol, turns what it reads into :mod:`finops_operator.models` data, and
raises :class:`~finops_operator.errors.DataSourceError` (naming the URL or
service and the reason) instead of returning partial data.

Import the adapter you need from its module (``sources.prometheus``,
``sources.aws``); nothing is imported here so that using one adapter never
pulls in the client library of another.
"""
