"""The plain git provider (GitLab/Gitea/any remote) against a real bare remote."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from finops_operator.actuation.providers import GitProvider, Provider, parse_marker

from tests.support.fixtures_git import cpu_edit, git, make_change_set, merge_into, ref_sha

pytestmark = pytest.mark.integration


def test_git_provider_pushes_and_sees_merge(bare_remote: Path, tmp_path: Path) -> None:
    prov = GitProvider(str(bare_remote), tmp_path / "work")
    assert isinstance(prov, Provider)
    assert prov.status("finops/cs") is None
    ref = prov.publish(make_change_set("cs", cpu_edit("400m")), base_branch="main", labels=["finops"],
                       reviewers=[], draft=False)
    assert ref.state == "pushed" and ref.created and ref.number is None
    assert ref.head_sha == ref_sha(bare_remote, "refs/heads/finops/cs")
    assert ref.url.endswith("#finops/cs") and len(ref.fingerprint or "") == 16
    assert prov.open_count() == 1
    assert prov.status("finops/cs").state == "pushed"

    again = prov.publish(make_change_set("cs", cpu_edit("400m")), base_branch="main", labels=[], reviewers=[],
                         draft=False)
    assert again.head_sha == ref.head_sha and not again.created  # same change set: no churn, no new branch
    changed = prov.publish(make_change_set("cs", cpu_edit("300m"), cpu_after="300m"), base_branch="main", labels=[], reviewers=[],
                           draft=False)
    assert changed.head_sha != ref.head_sha and changed.fingerprint != ref.fingerprint
    assert ref_sha(bare_remote, "refs/heads/finops/cs") == changed.head_sha  # force-pushed

    merge = merge_into(bare_remote, "refs/heads/finops/cs", "main", "Merge branch finops/cs",
                       env={"GIT_COMMITTER_DATE": "2030-01-02T03:04:05+00:00"})
    st = prov.status("finops/cs")
    assert st.state == "merged" and st.head_sha == changed.head_sha
    assert st.merged_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert ref_sha(bare_remote, "refs/heads/main") == merge
    assert prov.open_count() == 0


def test_git_provider_sees_deleted_branch_as_closed(bare_remote: Path, tmp_path: Path) -> None:
    prov = GitProvider(str(bare_remote), tmp_path / "work")
    prov.publish(make_change_set("a", cpu_edit("400m")), base_branch="main", labels=[], reviewers=[], draft=False)
    prov.publish(make_change_set("b", {"apps/checkout/NOTES.md": (None, "x\n")}), base_branch="main", labels=[],
                 reviewers=[], draft=False)
    assert prov.open_count() == 2
    git("update-ref", "-d", "refs/heads/finops/a", cwd=bare_remote)  # someone deleted it on the forge
    st = prov.status("finops/a")
    assert st.state == "closed" and "deleted" in st.reason
    assert prov.open_count() == 1


def test_a_deleted_branch_is_pushed_again_only_after_a_material_change(bare_remote: Path, tmp_path: Path) -> None:
    """Issue 7 #18: with the plain-git provider a rejected change was proposed again at once."""
    prov = GitProvider(str(bare_remote), tmp_path / "work")
    args = {"base_branch": "main", "labels": [], "reviewers": [], "draft": False}
    prov.publish(make_change_set("a", cpu_edit("400m")), **args)
    message = git("log", "-1", "--format=%B", "refs/heads/finops/a", cwd=bare_remote)
    assert "Monthly-Savings: 42.00" in message and "Fingerprint: " in message
    git("update-ref", "-d", "refs/heads/finops/a", cwd=bare_remote)           # a human rejected it
    same = prov.publish(make_change_set("a", cpu_edit("400m")), **args)
    assert same.state == "closed" and "not reopened" in same.reason
    nudged = prov.publish(make_change_set("a", cpu_edit("380m"), cpu_after="380m", savings=45.0), **args)
    assert nudged.state == "closed" and ref_sha(bare_remote, "refs/heads/finops/a") is None
    changed = prov.publish(make_change_set("a", cpu_edit("300m"), cpu_after="300m", savings=60.0), **args)
    assert changed.state == "pushed" and ref_sha(bare_remote, "refs/heads/finops/a") == changed.head_sha


def test_the_reopen_rule_reads_what_a_pr_or_commit_carried() -> None:
    from finops_operator.actuation.providers import carried, marker_for, reopen, with_trailers
    from finops_operator.ledger import Proposal
    cs = make_change_set("cs", cpu_edit(), savings=42.0)
    assert carried(marker_for(cs)) == carried(with_trailers("subject\n\nChange-Set: cs\n", cs))
    assert carried("<!-- finops-operator:changeset=cs fingerprint=abc -->") == Proposal("abc", None)
    assert not reopen(carried(marker_for(cs)), cs)
    assert not reopen(carried(marker_for(cs)), make_change_set("cs", cpu_edit(), cpu_after="380m", savings=45.0))
    assert reopen(carried(marker_for(cs)), make_change_set("cs", cpu_edit(), cpu_after="300m", savings=60.0))
    assert with_trailers("s\n\nChange-Set: cs\n", cs).endswith("Change-Set: cs\nFingerprint: "
                                                             f"{carried(marker_for(cs)).fingerprint}\nMonthly-Savings: 42.00\n")


def test_body_marker_is_kept_or_added() -> None:
    from finops_operator.actuation.providers import body_with_marker, changeset_fingerprint
    cs = make_change_set("cs", cpu_edit(), body="Saves money.\n")
    body, fp = body_with_marker(cs)
    assert parse_marker(body) == ("cs", fp) and fp == changeset_fingerprint(cs) and body.startswith("Saves money.")
    cs2 = make_change_set("cs", cpu_edit(), body="x\n<!-- finops-operator:changeset=cs fingerprint=abc123 -->\n")
    assert body_with_marker(cs2) == (cs2.body, "abc123")
    assert changeset_fingerprint(make_change_set("cs", cpu_edit(), cpu_after="300m")) != fp
