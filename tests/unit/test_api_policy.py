"""FinOpsPolicy spec parsing (errors name the field and the fix) and DST-correct schedules."""
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from finops_operator.api.policy import next_run, parse_schedule, read_policy
from finops_operator.errors import ConfigError
from finops_operator.settings import Mode
from finops_operator.units import parse_duration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "crs" / "finopspolicy.yaml"
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def policy(spec: dict, name: str = "p", namespace: str = "finops-system") -> dict:
    base = {"mode": "DryRun", "dataSources": {"prometheus": {"url": "http://prom:9090"}}}
    return {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
            "metadata": {"name": name, "namespace": namespace, "uid": "u1", "generation": 3},
            "spec": {**base, **spec}}


def test_the_example_policy_reads_completely():
    spec = read_policy(yaml.safe_load(EXAMPLE.read_text()), operator_ns="finops-system")
    assert spec.source == "FinOpsPolicy finops-system/platform"
    assert spec.settings.mode == Mode.PULL_REQUEST and spec.settings.detectors.cpu.limit_policy.value == "NoCPULimit"
    assert spec.schedule == "0 6 * * MON-FRI" and spec.time_zone == "Europe/Berlin"
    assert spec.prometheus.history == timedelta(days=14) and spec.prometheus.step_seconds == 300
    assert spec.aws.region == "eu-central-1"
    assert spec.git.provider == "GitHub" and spec.git.paths == ("clusters/prod", "terraform/eks")
    assert spec.git.token.name == "finops-github-token" and spec.git.target().labels == ["finops", "cost"]
    assert spec.scope.confined_to is None and "monitoring" in spec.scope.exclude
    assert spec.scope.namespace_selector["matchExpressions"][0]["operator"] == "NotIn"


def test_defaults():
    spec = read_policy(policy({}), operator_ns="finops-system")
    assert spec.schedule == "0 6 * * *" and spec.time_zone == "UTC" and spec.git is None
    assert spec.scope.exclude == ("kube-system", "kube-public", "kube-node-lease")
    assert spec.generation == 3 and spec.uid == "u1"


@pytest.mark.parametrize("spec, field, words", [
    ({"schedule": "61 * * * *"}, "spec.schedule", "cron expression"),
    ({"schedule": "0 6 31 2 *"}, "spec.schedule", "never fires"),
    ({"timeZone": "Mars/Olympus"}, "spec.timeZone", "IANA"),
    ({"dataSources": {}}, "spec.dataSources.prometheus.url", "is required"),
    ({"dataSources": {"prometheus": {"url": "prom:9090"}}}, "spec.dataSources.prometheus.url", "http(s) URL"),
    ({"dataSources": {"prometheus": {"url": "http://p", "historyWindow": "two weeks"}}},
     "spec.dataSources.prometheus.historyWindow", "duration"),
    ({"dataSources": {"prometheus": {"url": "http://p", "headers": {"Authorization": "Bearer x"}}}},
     "spec.dataSources.prometheus.headers.Authorization", "bearerTokenSecretRef"),
    ({"dataSources": {"prometheus": {"url": "http://p", "bearerTokenSecretRef": {"name": "Bad_Name"}}}},
     "spec.dataSources.prometheus.bearerTokenSecretRef.name", "Secret name"),
    ({"dataSources": {"prometheus": {"url": "http://p"}, "aws": {"region": "Frankfurt"}}},
     "spec.dataSources.aws.region", "AWS region"),
    ({"mode": "PullRequest"}, "spec.git", "DryRun"),
    ({"mode": "PullRequest", "git": {"repository": "https://github.com/acme/gitops"}}, "spec.git.repository",
     "owner/name"),
    ({"mode": "PullRequest", "git": {"repository": "acme/gitops"}}, "spec.git.tokenSecretRef", "token"),
    ({"mode": "PullRequest", "git": {"provider": "Git", "repository": "acme/gitops"}}, "spec.git.repository",
     "clone URL"),
    ({"mode": "PullRequest", "git": {"provider": "Git", "repository": "ssh://git@h/r.git", "paths": ["../etc"]}},
     "spec.git.paths[0]", "inside the repository"),
    ({"mode": "PullRequest", "git": {"provider": "Git", "repository": "file:///etc"}}, "spec.git.repository",
     "FINOPS_ALLOW_LOCAL_GIT"),
    ({"mode": "PullRequest", "git": {"provider": "Git", "repository": "/etc"}}, "spec.git.repository", "clone URL"),
    ({"detectors": {"cpu": {"percentile": 101}}}, "spec.detectors.cpu.percentile", "less than or equal to 100"),
    ({"detectors": {"memory": {"percentile": 49}}}, "spec.detectors.memory.percentile", "greater than or equal to 50"),
    ({"detectors": {"memory": {"percentile": 97.5}}}, "spec.detectors.memory.percentile", "valid integer"),
    ({"dataSources": {"prometheus": {"url": "http://p", "historyWindow": "99999999999999w"}}},
     "spec.dataSources.prometheus.historyWindow", "duration"),
    ({"dataSources": {"prometheus": {"url": "http://p", "historyWindow": "3000w"}}},
     "spec.dataSources.prometheus.historyWindow", "maximum of 90 days"),
    ({"dataSources": {"prometheus": {"url": "http://p", "historyWindow": "10m", "stepSeconds": 3600}}},
     "spec.dataSources.prometheus.historyWindow", "shorter than one step"),
    ({"dataSources": {"prometheus": {"url": "http://p", "headers": {"X-Scope-OrgID": "a\r\nX-Evil: 1"}}}},
     "spec.dataSources.prometheus.headers.X-Scope-OrgID", "control characters"),
    ({"dataSources": {"prometheus": {"url": "http://p", "headers": {"Bad Name": "x"}}}},
     "spec.dataSources.prometheus.headers.Bad Name", "HTTP token"),
    ({"dataSources": {"prometheus": {"url": "http://p", "clusterLabel": "9x", "cluster": "eu"}}},
     "spec.dataSources.prometheus.clusterLabel", "label name"),
    ({"dataSources": {"prometheus": {"url": "http://p", "recordingRules": "Sometimes"}}},
     "spec.dataSources.prometheus.recordingRules", "Auto"),
    ({"dataSources": {"prometheus": {"url": "http://p", "tls": {"insecureSkipVerify": True,
                                                               "caSecretRef": {"name": "ca"}}}}},
     "spec.dataSources.prometheus.tls.insecureSkipVerify", "would be ignored"),
    ({"guardrails": {"unknownKnob": 1}}, "spec.guardrails.unknownKnob", "Extra inputs"),
    ({"mode": "Sometimes"}, "spec.mode", "DryRun"),
    ({"scope": {"namespaces": ["a"], "excludeNamespaces": ["a"]}}, "spec.scope.excludeNamespaces", "both"),
])
def test_bad_specs_name_the_field(spec, field, words):
    with pytest.raises(ConfigError) as caught:
        read_policy(policy(spec), operator_ns="finops-system")
    assert caught.value.source == "FinOpsPolicy finops-system/p"
    assert caught.value.field == field, str(caught.value)
    assert words in str(caught.value)


def test_policies_elsewhere_scan_only_their_own_namespace():
    spec = read_policy(policy({}, namespace="team-a"), operator_ns="finops-system")
    assert spec.scope.confined_to == "team-a"
    with pytest.raises(ConfigError, match="scans only its own namespace") as caught:
        read_policy(policy({"scope": {"namespaces": ["team-b"]}}, namespace="team-a"), operator_ns="finops-system")
    assert caught.value.field == "spec.scope.namespaces"
    with pytest.raises(ConfigError, match="excluded"):
        read_policy(policy({"scope": {"excludeNamespaces": ["team-a"]}}, namespace="team-a"),
                    operator_ns="finops-system")


def test_file_remotes_need_the_operator_level_switch(monkeypatch):
    """FINOPS_ALLOW_LOCAL_GIT is read once into OperatorConfig; a policy can never switch it on."""
    from finops_operator.config import OperatorConfig
    spec = {"mode": "PullRequest", "git": {"provider": "Git", "repository": "file:///srv/gitops.git"}}
    monkeypatch.setenv("FINOPS_ALLOW_LOCAL_GIT", "true")
    allowed = OperatorConfig().allow_local_git
    assert allowed is True
    assert read_policy(policy(spec), operator_ns="finops-system",
                       allow_local_git=allowed).git.repository == "file:///srv/gitops.git"
    with pytest.raises(ConfigError, match="refused"):
        read_policy(policy(spec), operator_ns="finops-system")


def test_the_longest_history_window_is_accepted():
    spec = read_policy(policy({"dataSources": {"prometheus": {"url": "http://p", "historyWindow": "90d"}}}),
                       operator_ns="finops-system")
    assert spec.prometheus.history == timedelta(days=90)


def test_spec_that_is_not_a_mapping():
    body = policy({})
    body["spec"] = ["nope"]
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_policy(body, operator_ns="finops-system")


@pytest.mark.parametrize("text, seconds", [("14d", 14 * 86400), ("336h", 336 * 3600), ("1h30m", 5400),
                                           ("2w", 14 * 86400), ("90s", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["14 d", "1.5h", "", "0s", "d", "99999999999999w", 14, None])
def test_bad_durations(text):
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_one_duration_parser():
    """historyWindow and --history are read by units.parse_duration only."""
    package = Path(__file__).resolve().parents[2] / "operator" / "finops_operator"
    twins = [p for p in package.rglob("*.py") if p.name != "units.py" and "(ms|s|m|h|d|w)" in p.read_text()]
    assert twins == []


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_local_time_follows_dst():
    # 06:00 Berlin is 05:00 UTC in winter and 04:00 UTC in summer.
    assert next_run("0 6 * * *", BERLIN, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 4)
    assert next_run("0 6 * * *", BERLIN, utc(2026, 3, 27, 12)) == utc(2026, 3, 28, 5)
    assert next_run("0 6 * * *", BERLIN, utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 5)


def test_time_skipped_by_spring_forward_runs_once_at_the_end_of_the_gap():
    # 2026-03-29 Berlin: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist that day.
    first = next_run("30 2 * * *", BERLIN, utc(2026, 3, 28, 12))
    assert first == utc(2026, 3, 29, 1) and first.astimezone(BERLIN).hour == 3
    assert next_run("30 2 * * *", BERLIN, first) == utc(2026, 3, 30, 0, 30)
    # Every half hour: 02:00 and 02:30 collapse onto 03:00, nothing runs twice.
    runs, t = [], utc(2026, 3, 29, 0, 15)
    for _ in range(4):
        t = next_run("*/30 * * * *", BERLIN, t)
        runs.append(t)
    assert runs == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2)]


def test_time_repeated_by_fall_back_runs_once():
    # 2026-11-01 New York: 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    first = next_run("30 1 * * *", NEW_YORK, utc(2026, 10, 31, 12))
    assert first == utc(2026, 11, 1, 5, 30)
    assert next_run("30 1 * * *", NEW_YORK, first) == utc(2026, 11, 2, 6, 30)


def test_weekday_schedule_and_macros():
    monday = next_run("0 6 * * MON-FRI", BERLIN, utc(2026, 6, 12, 12))   # a Friday afternoon
    assert monday == utc(2026, 6, 15, 4) and monday.astimezone(BERLIN).weekday() == 0
    assert next_run("@daily", ZoneInfo("UTC"), utc(2026, 6, 12, 12)) == utc(2026, 6, 13)
    assert parse_schedule(" @hourly ") == "@hourly"


def test_next_run_needs_an_aware_time():
    with pytest.raises(ValueError):
        next_run("@daily", BERLIN, datetime(2026, 1, 1))


def test_live_scans_take_time_windows_cluster_matchers_tls_and_rule_modes():
    spec = read_policy(policy({"detectors": {"memory": {"timeWindow": {"startHour": 9, "endHour": 17}}},
                               "dataSources": {"prometheus": {
                                   "url": "http://p", "cluster": 'prod "eu"', "recordingRules": "Require",
                                   "tls": {"caSecretRef": {"name": "prom-ca"},
                                           "clientCertSecretRef": {"name": "prom-client"}}}}}),
                       operator_ns="finops-system")
    assert spec.settings.detectors.memory.time_window.start_hour == 9
    prom = spec.prometheus
    assert prom.matchers == ('cluster="prod \\"eu\\""',) and prom.recording_rules == "Require"
    assert (prom.ca.name, prom.ca.key, prom.client_cert, prom.insecure_skip_verify) == \
        ("prom-ca", "ca.crt", "prom-client", False)
    plain = read_policy(policy({}), operator_ns="finops-system").prometheus
    assert plain.matchers == () and plain.recording_rules == "Auto" and plain.ca is None
