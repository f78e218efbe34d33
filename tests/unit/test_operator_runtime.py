"""The operator as it runs: configuration read once, JSON logs naming the policy, nothing secret logged, metrics."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from finops_operator import metrics
from finops_operator.handlers import logs
from finops_operator.api.policy import read_policy
from finops_operator.api.runs import RunOutcome, record_metrics
from finops_operator.config import OperatorConfig, load_config
from finops_operator.errors import ConfigError, DataSourceError
from prometheus_client import generate_latest

KEY_ID, SECRET_KEY = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
POLICY = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
          "metadata": {"name": "shop", "namespace": "team-a", "uid": "u-1", "generation": 1},
          "spec": {"mode": "DryRun", "dataSources": {"prometheus": {"url": "http://prom:9090"}}}}


@pytest.fixture
def clean_env(monkeypatch):
    import os
    for name in list(os.environ):
        if name.startswith("FINOPS_") or name == "AWS_REGION":
            monkeypatch.delenv(name)
    return monkeypatch


def test_configuration_comes_from_finops_variables(clean_env, tmp_path):
    clean_env.setenv("FINOPS_CLUSTER_NAME", "prod-eu-1")
    clean_env.setenv("FINOPS_TIMER_INTERVAL_SECONDS", "2.5")
    clean_env.setenv("FINOPS_WORKDIR", str(tmp_path))
    clean_env.setenv("FINOPS_LOG_FORMAT", "text")
    clean_env.setenv("AWS_REGION", "eu-west-1")
    config = load_config()
    assert (config.cluster_name, config.timer_interval_seconds, config.workdir) == ("prod-eu-1", 2.5, tmp_path)
    assert config.log_format.value == "text" and config.aws_region == "eu-west-1"
    assert config.operator_namespace == "finops-system" and config.log_level.value == "INFO"


def test_a_bad_variable_stops_the_start_with_its_name(clean_env):
    clean_env.setenv("FINOPS_TIMER_INTERVAL_SECONDS", "soon")
    clean_env.setenv("FINOPS_CLUSTER_NAME", "bad name!")
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "FINOPS_TIMER_INTERVAL_SECONDS" in str(caught.value) and "FINOPS_CLUSTER_NAME" in str(caught.value)


def test_the_identity_is_the_pod_else_host_and_process():
    assert OperatorConfig(pod_name="finops-7d9f-x").identity == "finops-7d9f-x"
    import os
    assert OperatorConfig(pod_name="").identity.endswith(f"/{os.getpid()}")


@pytest.fixture
def json_logging():
    """The operator's logging set-up; yields what its handler writes."""
    import io
    root = logging.getLogger()
    before_handlers, before_level = list(root.handlers), root.level
    logs.configure_logging("DEBUG", "json")
    out = io.StringIO()
    for handler in root.handlers:
        if handler not in before_handlers:
            handler.setStream(out)
    yield out
    logs.uninstall_scrubbing()
    root.handlers[:] = before_handlers
    root.setLevel(before_level)


def test_json_lines_name_the_policy_and_hide_secrets(json_logging):
    log = logging.getLogger("finops_operator.sources.prometheus")
    log.info("outside any policy")
    with logs.about(POLICY):
        log.warning("query to http://admin:hunter2@prom:9090 failed\nforged line")
        try:
            raise DataSourceError("token=s3cr3t-value rejected", source="x")
        except DataSourceError:
            log.exception("run failed")
    lines = [json.loads(line) for line in json_logging.getvalue().splitlines()]
    assert [line["message"] for line in lines][:1] == ["outside any policy"] and "object" not in lines[0]
    failed, crashed = lines[1], lines[2]
    assert failed["object"]["namespace"] == "team-a" and failed["object"]["name"] == "shop"
    assert failed["object"]["kind"] == "FinOpsPolicy" and failed["severity"] == "warn"
    assert failed["logger"] == "finops_operator.sources.prometheus" and "timestamp" in failed
    assert "hunter2" not in failed["message"] and "\n" not in failed["message"]
    assert crashed["object"]["name"] == "shop" and "s3cr3t-value" not in json.dumps(crashed)
    assert "Traceback" in crashed["exc_info"]


def test_the_run_thread_keeps_the_policy(json_logging):
    import asyncio

    async def handler():
        with logs.about(POLICY):
            await asyncio.to_thread(logging.getLogger("finops_operator.api.runs").info, "in the run thread")
    asyncio.run(handler())
    line = next(json.loads(x) for x in json_logging.getvalue().splitlines() if "in the run thread" in x)
    assert line["object"]["name"] == "shop"


def test_aws_key_id_never_reaches_debug_logs(json_logging, caplog, clean_env):
    """botocore logs the signed request (Credential=AKIA...) at DEBUG; the records are scrubbed when made."""
    from finops_operator.sources.aws import AwsSource
    clean_env.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    caplog.set_level(logging.DEBUG)
    source = AwsSource("us-east-1", endpoint_url="http://user:pw@127.0.0.1:9", max_attempts=1, connect_timeout=1)
    with pytest.raises(DataSourceError) as caught:
        source.unattached_volumes()
    assert any("Authorization" in r.getMessage() or "Credential" in r.getMessage() for r in caught_records(caplog)), \
        "botocore's DEBUG lines were not captured: the test would prove nothing"
    assert KEY_ID not in caplog.text and SECRET_KEY not in caplog.text
    assert KEY_ID not in str(caught.value) and "pw" not in str(caught.value).split("127.0.0.1")[0]


def caught_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("botocore")]


def test_process_and_last_success_metrics():
    policy = read_policy(POLICY, operator_ns="finops-system")
    finished = datetime(2026, 6, 15, 10, 0, 30, tzinfo=UTC)
    record_metrics(RunOutcome(policy=policy, started=datetime(2026, 6, 15, 10, 0, tzinfo=UTC), seconds=30.0),
                   finished=finished)
    record_metrics(RunOutcome(policy=policy, started=finished, errors={"inventory": "down"}))   # a failure later
    text = generate_latest(metrics.REGISTRY).decode()
    assert metrics.REGISTRY.get_sample_value("finops_policy_last_success_timestamp_seconds",
                                             {"policy": "team-a/shop"}) == finished.timestamp()
    assert 'finops_policy_last_success_timestamp_seconds{policy="team-a/shop"}' in text
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text
    assert "python_gc_objects_collected_total" in text
