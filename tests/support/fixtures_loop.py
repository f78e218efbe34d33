"""Fixtures for the full-loop tests: the demo world on real servers (see ``tests/support/loop.py``).

* ``demo_prometheus`` (session): the demo scenario's 14 days at 5 minutes, ending
  ~3 h ago, backfilled into Debian's prometheus. FAILS (never skips) when the
  binaries are missing.
* ``loop`` (per test): a fresh bare repo seeded with examples/gitops behind the
  GitHub emulator, moto holding the scenario's EBS volumes, and ``LoopWorld``
  to build readers, providers and run the policy.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from finops_operator.actuation.github import GitHubProvider
from finops_operator.actuation.render import render_commit_message
from finops_operator.cli.scan import load_policy_file
from finops_operator.ledger import Ledger
from finops_operator.models import ClusterState, Window
from finops_operator.reconcile import (
    GitTarget,
    LoopDeps,
    RunReport,
    export_tree,
    run_policy,
)
from finops_operator.settings import PolicySettings
from finops_operator.simulator.engine import Simulation
from finops_operator.sources.aws import AwsSource
from finops_operator.sources.prometheus import PrometheusSource

from tests.support.fixtures_git import make_bare_remote
from tests.support.github_emulator import GitHubEmulator
from tests.support.loop import (
    DEMO_POLICY,
    LoopReader,
    bare_inventory,
    create_scenario_volumes,
    demo_simulation,
    gitops_files,
)
from tests.support.prometheus_server import PrometheusServer, history_end, serve_simulation

HISTORY = timedelta(days=14)
CHUNK = timedelta(days=7)     # 2 chunks: 12 requests per read instead of 72 (keeps the tests fast)


@dataclass
class DemoPrometheus:
    sim: Simulation
    server: PrometheusServer
    window: Window

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="session")
def demo_prometheus(tmp_path_factory) -> Iterator[DemoPrometheus]:
    """A real Prometheus holding the demo scenario's history (OpenMetrics -> promtool -> TSDB)."""
    end = datetime.fromtimestamp(history_end(), UTC)
    sim = demo_simulation(end)
    server = serve_simulation(sim, tmp_path_factory.mktemp("demo-prometheus"), what="the demo scenario")
    yield DemoPrometheus(sim, server, sim.state.window)
    server.stop()


@dataclass
class LoopWorld:
    """One test's servers and the knobs to run the policy against them."""

    prom: DemoPrometheus
    github: GitHubEmulator
    aws_url: str
    volume_ids: dict[str, str]
    workdir: Path
    settings: PolicySettings
    inventory: ClusterState
    ledger: Ledger = field(default_factory=Ledger)
    reports: list[RunReport] = field(default_factory=list)
    checkouts: int = 0

    @property
    def bare(self) -> Path:
        return self.github.bare

    def aws(self, **kw: Any) -> AwsSource:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name=self.inventory.region)
        return AwsSource(self.inventory.region, endpoint_url=self.aws_url, session=session, **kw)

    def reader(self, prometheus: PrometheusSource | None = None, aws: AwsSource | None = None) -> LoopReader:
        prometheus = prometheus or PrometheusSource(self.prom.url, scrape_interval=self.prom.window.step_seconds,
                                                    chunk=CHUNK)
        return LoopReader(self.inventory, prometheus, self.prom.window, aws or self.aws())

    def provider(self, token: str | None = None, **kw: Any) -> GitHubProvider:
        opts: dict[str, Any] = {"api_url": self.github.api_url, "git_url": self.github.git_url, "retries": 3,
                                "backoff_factor": 0.01, "secondary_rate_wait": 0.2, "max_rate_limit_wait": 5,
                                "seconds_between_requests": None, "seconds_between_writes": None,
                                "workdir": self.workdir / "provider",
                                "commit_message": render_commit_message}
        opts.update(kw)
        return GitHubProvider("acme/gitops", token or self.github.token, **opts)

    def checkout(self, base: str) -> Path:
        """The base branch's files, exported from the bare repo (what the provider's clone holds)."""
        self.checkouts += 1
        dest = self.workdir / f"checkout-{self.checkouts}"
        dest.mkdir()
        return export_tree(self.bare, f"refs/heads/{base}", dest)

    def deps(self, reader: LoopReader | None = None, provider: GitHubProvider | None = None, **kw: Any) -> LoopDeps:
        return LoopDeps(read_state=reader or self.reader(), provider=provider or self.provider(),
                        checkout=kw.pop("checkout", self.checkout), **kw)

    def run(self, now: datetime, deps: LoopDeps | None = None, **kw: Any) -> RunReport:
        report = run_policy("demo", self.settings, self.ledger, deps or self.deps(), now=now, history=HISTORY,
                            step_seconds=self.prom.window.step_seconds,
                            git=GitTarget(labels=["finops", "cost-savings"], reviewers=["alice"]), **kw)
        self.reports.append(report)
        return report


@pytest.fixture
def loop(demo_prometheus: DemoPrometheus, aws_endpoint, tmp_path: Path) -> Iterator[LoopWorld]:
    """The demo world for one test: fresh repo + emulator + moto volumes, shared Prometheus."""
    bare = make_bare_remote(tmp_path / "remote", files=gitops_files())
    emu = GitHubEmulator(bare, "acme/gitops")
    try:
        emu.start()
    except OSError as exc:  # pragma: no cover - environment problem
        pytest.fail(f"cannot start the GitHub emulator on 127.0.0.1: {exc}")
    sim = demo_prometheus.sim
    ec2 = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                        region_name=sim.state.region).client("ec2", endpoint_url=aws_endpoint.url)
    ids = create_scenario_volumes(ec2, sim, demo_prometheus.window.end)
    world = LoopWorld(demo_prometheus, emu, aws_endpoint.url, ids, tmp_path, load_policy_file(DEMO_POLICY),
                      bare_inventory(sim.state))
    yield world
    emu.stop()
    assert not emu.unhandled, f"requests the emulator does not implement (GitHub would 404): {emu.unhandled}"
