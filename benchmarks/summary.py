"""Render the benchmark results (the JSON files in ``results/``) as a short markdown summary."""
from __future__ import annotations


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def _machine(m: dict) -> str:
    return (f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
            f"{m['prometheus']}; measured {m['measured_at']}.")


def _scan(data: dict) -> list[str]:
    g, s = data["generated"], data["scan"]
    lines = [f"## Scan from a snapshot (issue 2){' - QUICK' if data.get('quick') else ''}", "",
             (f"{s['containers']:,} containers x {g['days']:g} days at {g['step_seconds']} s "
              f"({s['points_per_series']:,} points per series, {s['samples']:,} samples; snapshot "
              f"{_mib(g['snapshot_bytes'])} on disk, made in {g['simulate_seconds']} s + saved in "
              f"{g['save_seconds']} s)."),
             "", "| stage | wall time (s) | peak RSS after (MiB) |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {st['seconds']:.3f} | {st['peak_rss_mib_after']:,.0f} |" for name, st in s["stages"].items()]
    lines += [f"| **total** | **{s['total_seconds']:.3f}** | **{s['peak_rss_mib']:,.0f}** |", "",
              (f"Memory: {s['memory_measure']} (interpreter at start: {s['rss_at_start_mib']:.0f} MiB). "
               f"Result: {s['findings']:,} findings, {s['skipped']:,} skipped, {s['change_sets']} change sets."),
              "", _machine(data["machine"]), ""]
    return lines


def _prometheus(data: dict) -> list[str]:
    lines = [f"## Real Prometheus (issue 4){' - QUICK' if data.get('quick') else ''}", "",
             ("| containers | pods | window | samples backfilled | OpenMetrics | TSDB | backfill (s) "
              "| requests per scan | scan cold (s) | scan warm (s) | containers read |"),
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in data["runs"]:
        cold, warm = r["scan_cold"], r["scan_warm"]
        lines.append(f"| {r['containers']:,} | {r['pods']:,} | {r['window_hours']:g} h @ {r['step_seconds']} s "
                     f"| {r['openmetrics_samples']:,} | {_mib(r['openmetrics_bytes'])} | {_mib(r['tsdb_bytes'])} "
                     f"| {r['backfill_seconds']} | {cold['requests']} ({cold['chunks']} chunk) | {cold['seconds']} "
                     f"| {warm['seconds']} | {cold['containers_with_usage']:,} |")
    requests = {r["scan_cold"]["requests"] for r in data["runs"]}
    lines += ["", "Requests per scan are the same at every size"
              if len(requests) == 1 else f"Requests per scan differ: {sorted(requests)}",
              ("(a probe, container facts, owners and HPAs, and one query per statistic: per-bucket range "
               "queries for CPU and memory and the window percentiles; see sources/promscan.py. The window's "
               "length does not change it, only a server sample limit splitting a range query does). "
               "Containers read = containers with a Running pod (Pending pods have no cAdvisor series)."),
              "", _machine(data["machine"]), ""]
    return lines


PROMFLOOR_NAMES = {"with_rules": "finops-operator, recording rules", "without_rules": "finops-operator, no rules",
                   "krr": "KRR per-object pattern", "floor": "floor (2 batched queries)"}


def _promfloor(data: dict) -> list[str]:
    lines = [f"## Near the Prometheus floor (issue 13){' - QUICK' if data.get('quick') else ''}", "",
             "| data | pass | wall (median, s) | HTTP requests | Prometheus CPU (s) | peak RSS (MiB) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    targets = []
    for size in data["sizes"]:
        label = f"{size['containers']:,} containers x {size['hours']} h"
        for i, (name, m) in enumerate(size["median"].items()):
            lines.append(f"| {label if i == 0 else ''} | {PROMFLOOR_NAMES.get(name, name)} | {m['seconds']:.2f} "
                         f"| {m['requests']:,.0f} | {m['prometheus_cpu_seconds']:.2f} | {m['peak_rss_mib']:.0f} |")
        targets += [f"- {label}: " + "; ".join(f"{name} = {value} ({size['verdicts'][name]})"
                                               for name, value in size["ratios"].items())]
    first = data["sizes"][0]
    lines += ["", f"Targets (with rules / floor <= 1.5, KRR / without rules >= 5, without / KRR Prometheus CPU <= 1):",
              *targets, "", f"Recording-rules option: {first.get('rules_option')}. Medians of {first['rounds']} "
              "alternating runs, each pass in a fresh process.", "", _machine(data["machine"]), ""]
    return lines


def render_summary(results: dict[str, dict]) -> str:
    lines = ["# Benchmark results", "", "Written by `make bench` (`python benchmarks/run.py`).", ""]
    if "scan" in results:
        lines += _scan(results["scan"])
    if "prometheus" in results:
        lines += _prometheus(results["prometheus"])
    if "promfloor" in results:
        lines += _promfloor(results["promfloor"])
    return "\n".join(lines)
