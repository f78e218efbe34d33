"""spec.dataSources.prometheus.tls end to end: a policy's CA and client-certificate Secrets (read through the
same ``secret`` callback the operator uses) reach the HTTP client, against a mutual-TLS gateway in front of
the backfilled Prometheus; a missing piece fails with a TLS error naming the server, never with data."""
from __future__ import annotations

import os
import stat

import pytest

from finops_operator.api.policy import read_policy
from finops_operator.api.wiring import prometheus_source
from finops_operator.errors import ConfigError, DataSourceError
from finops_operator.sources.promql import Scope
from finops_operator.sources.promtls import pem_file
from tests.support.kubecerts import generate
from tests.support.prometheus_server import TlsProxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateway(prometheus_history, tmp_path_factory):
    certs = generate(tmp_path_factory.mktemp("tls"))
    proxy = TlsProxy(prometheus_history.url, certs.serving_cert, certs.serving_key, client_ca=certs.ca_cert)
    yield proxy, certs
    proxy.close()


def source_for(url: str, tls: dict, secrets: dict[tuple[str, str], str]):
    body = {"metadata": {"name": "p", "namespace": "finops-system"},
            "spec": {"mode": "DryRun", "dataSources": {"prometheus": {"url": url, "tls": tls}}}}
    policy = read_policy(body, operator_ns="finops-system")
    read: list[str] = []

    def secret(ref, where: str) -> str:
        read.append(where)
        return secrets[(ref.name, ref.key)]

    return prometheus_source(policy, secret), read


def test_mutual_tls_with_the_policy_secrets(gateway, prometheus_history):
    proxy, certs = gateway
    secrets = {("prom-ca", "ca.crt"): certs.ca_cert.read_text(),
               ("prom-client", "tls.crt"): certs.admin_cert.read_text(),
               ("prom-client", "tls.key"): certs.admin_key.read_text()}
    tls = {"caSecretRef": {"name": "prom-ca"}, "clientCertSecretRef": {"name": "prom-client"}}
    source, read = source_for(proxy.url, tls, secrets)
    assert read == ["spec.dataSources.prometheus.tls.caSecretRef",
                    "spec.dataSources.prometheus.tls.clientCertSecretRef",
                    "spec.dataSources.prometheus.tls.clientCertSecretRef"]
    result = source.collect(Scope(namespaces="small"), prometheus_history.window())
    assert len(result.usage) == 3
    for path in (source._client._session.verify, *source._client._session.cert):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    insecure, _ = source_for(proxy.url, {"insecureSkipVerify": True, "clientCertSecretRef": {"name": "prom-client"}},
                             secrets)
    assert len(insecure.collect(Scope(namespaces="small"), prometheus_history.window()).usage) == 3


@pytest.mark.parametrize("tls", [{"clientCertSecretRef": {"name": "prom-client"}},     # the server's CA unknown
                                 {"caSecretRef": {"name": "prom-ca"}}],                 # no client certificate
                         ids=["no-ca", "no-client-cert"])
def test_a_missing_piece_is_a_tls_error_naming_the_server(gateway, prometheus_history, tls):
    proxy, certs = gateway
    secrets = {("prom-ca", "ca.crt"): certs.ca_cert.read_text(),
               ("prom-client", "tls.crt"): certs.admin_cert.read_text(),
               ("prom-client", "tls.key"): certs.admin_key.read_text()}
    source, _ = source_for(proxy.url, tls, secrets)
    with pytest.raises(DataSourceError) as err:
        source.collect(Scope(namespaces="small"), prometheus_history.window())
    assert proxy.url in str(err.value) and source.requests <= source.retries
    assert "TLS" in str(err.value) or "cannot connect" in str(err.value)
    if "caSecretRef" not in tls:
        assert "tls.caSecretRef" in str(err.value) and source.requests == 1      # refused, not retried


def test_a_secret_that_is_not_pem_is_refused():
    with pytest.raises(ConfigError, match="not PEM"):
        pem_file("just-a-token")
    assert pem_file("-----BEGIN CERTIFICATE-----\nx\n") == pem_file("-----BEGIN CERTIFICATE-----\nx\n")
