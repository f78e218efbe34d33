import pytest

from finops_operator.errors import ConfigError, QuantityError
from finops_operator.settings import load_policy
from finops_operator.units import format_cpu, format_memory, parse_cpu, parse_memory, round_up


@pytest.mark.parametrize("text,cores", [("1", 1.0), (1, 1.0), ("1000m", 1.0), ("250m", 0.25),
                                         ("0.5", 0.5), (".5", 0.5), ("1e3m", None), ("2", 2.0)])
def test_parse_cpu(text, cores):
    if cores is None:
        with pytest.raises(QuantityError):
            parse_cpu(text)
    else:
        assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("text,num", [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1G", 10**9),
                                       ("128974848", 128974848), ("129e6", 129 * 10**6), ("500M", 5 * 10**8),
                                       ("64Ki", 65536)])
def test_parse_memory(text, num):
    assert parse_memory(text) == num


@pytest.mark.parametrize("bad", ["2 GB", "abc", "-1Gi", "1.5.5", "", True])
def test_bad_quantities_name_the_value(bad):
    with pytest.raises(QuantityError) as err:
        parse_memory(bad, what="resources.requests.memory")
    assert "resources.requests.memory" in str(err.value)


def test_format_keeps_style():
    assert format_cpu(0.25) == "250m"
    assert format_cpu(2.0, like="1") == "2"
    assert format_cpu(2.0, like="1500m") == "2000m"
    assert format_memory(2 * 2**30) == "2Gi"
    assert format_memory(384 * 2**20) == "384Mi"
    assert format_memory(2 * 10**9, like="1G") == "2G"
    assert format_memory(134217728, like="268435456") == "134217728"


def test_round_up_steps():
    assert round_up(0.123, 0.01) == pytest.approx(0.13)
    assert round_up(0.12, 0.01) == pytest.approx(0.12)


def test_policy_errors_name_the_field():
    with pytest.raises(ConfigError) as err:
        load_policy({"guardrails": {"maxRiskPercent": 150}}, source="policy.yaml")
    assert "policy.yaml" in str(err.value) and "guardrails.maxRiskPercent" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_policy({"guardrails": {"changeWindows": [{"timeZone": "Mars/Olympus"}]}})
    assert "unknown time zone" in str(err.value)
    assert load_policy({"detectors": {"cpu": {"percentile": 90}}}).detectors.cpu.percentile == 90


def test_settings_from_a_finopspolicy_object_reads_only_settings_keys():
    from finops_operator.settings import Mode, settings_from_document
    doc = {"apiVersion": "finops.dev/v1alpha1", "kind": "FinOpsPolicy",
           "spec": {"mode": "DryRun", "schedule": "0 6 * * *", "git": {"repository": "acme/gitops"},
                    "guardrails": {"maxOpenPrs": 2}}}
    settings = settings_from_document(doc)
    assert settings.mode is Mode.DRY_RUN and settings.guardrails.max_open_prs == 2
    with pytest.raises(ConfigError) as err:
        settings_from_document({"spec": {"guardrails": {"maxOpenPrs": -1}}}, source="p.yaml")
    assert "guardrails.maxOpenPrs" in str(err.value)
