"""Issue 13 benchmark: the project's Prometheus scan next to the floor and a KRR-style per-object baseline.

    python benchmarks/bench_promfloor.py --containers 1000 --hours 168 [--rounds 3] [--out FILE]
    python benchmarks/bench_promfloor.py --quick                   # 200 containers x 1 day

One Prometheus (Debian's, on loopback) serves one backfilled history
(tests/support/promfloor_history.py: the raw cAdvisor / kube-state-metrics
series the tools read, plus the design's two recorded series written next to
them). Four passes, each in its own fresh process, alternating, ``--rounds``
times each:

- ``with_rules``: ``PrometheusSource(...).collect(...)`` with the recording rules required;
- ``without_rules``: the same with them turned off (until the source has that
  option, both passes call the same ``collect`` and say so in the result);
- ``krr``: KRR's documented per-object query pattern (benchmarks/krr_pattern.py);
- ``floor``: the two batched queries a recommendation needs, sent together: the p99
  over time of every container's CPU rate and the max over time of its memory,
  both over subqueries of the raw series.

Per pass: wall time and HTTP requests (measured in the child), peak RSS of the
child (``ru_maxrss``), and Prometheus CPU seconds (its own
``process_cpu_seconds_total`` from /metrics, before and after). The medians go
to the result with the issue's target ratios and PASS/FAIL per target.

The TSDB is cached per (containers, hours, seed) under
``~/.cache/finops-operator/bench/`` so a re-run measures without rebuilding it.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (ROOT, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

CACHE = Path(os.environ.get("FINOPS_BENCH_CACHE", Path.home() / ".cache/finops-operator/bench"))
DATASET_VERSION = 1                      # bump when promfloor_history writes different data
STEP = 300
PASSES = ("with_rules", "without_rules", "krr", "floor")
TARGETS = {"with_rules_vs_floor_wall": 1.5, "with_rules_vs_floor_prom_cpu": 1.5,
           "krr_vs_without_rules_wall": 5.0, "without_rules_vs_krr_prom_cpu": 1.0}


# --------------------------------------------------------------------------- dataset (cached)


def dataset(containers: int, hours: int, seed: int) -> tuple[Path, dict]:
    """The backfilled TSDB directory for these parameters and its metadata; built once, then reused."""
    from bench_prometheus import dir_bytes
    from tests.support.promfloor_history import write_history
    from tests.support.prometheus_server import PrometheusServer, history_end, require_binaries

    require_binaries()
    home = CACHE / f"promfloor-v{DATASET_VERSION}-{containers}c-{hours}h-s{seed}"
    meta_file = home / "meta.json"
    if meta_file.exists():
        return home, json.loads(meta_file.read_text())
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    end = history_end()
    om = home / "history.om"
    began = time.perf_counter()
    meta = write_history(om, containers, start=end - hours * 3600, end=end, interval=STEP, seed=seed)
    meta["write_seconds"] = round(time.perf_counter() - began, 1)
    began = time.perf_counter()
    PrometheusServer(home).backfill(om, timeout=6 * 3600)
    meta["backfill_seconds"] = round(time.perf_counter() - began, 1)
    om.unlink()
    meta.update(hours=hours, seed=seed, tsdb_bytes=dir_bytes(home / "tsdb"),
                built_at=datetime.now(UTC).isoformat(timespec="seconds"))
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")        # written last: marks the cache complete
    return home, meta


# --------------------------------------------------------------------------- the four passes (run in a child)


def _supported(func, **options) -> dict:
    params = inspect.signature(func).parameters
    return {k: v for k, v in options.items() if k in params}


def project_pass(url: str, start: int, end: int, rules: bool) -> dict:
    """The project: one ``PrometheusSource(...).collect(scope, window, ...)`` through its public API."""
    from finops_operator.models import Window
    from finops_operator.sources.prometheus import PrometheusSource
    from finops_operator.sources.promql import Scope

    mode = "Require" if rules else "Off"
    ctor = _supported(PrometheusSource.__init__, recording_rules=mode)
    call = _supported(PrometheusSource.collect, recording_rules=mode, rate_window_s=STEP)
    source = PrometheusSource(url, scrape_interval=STEP, timeout=900, retries=1, **ctor)
    window = Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC), STEP)
    began = time.perf_counter()
    result = source.collect(Scope(), window, **call)
    seconds = time.perf_counter() - began
    option = "recording_rules" in ctor or "recording_rules" in call
    return {"seconds": seconds, "requests": source.requests, "containers": len(result.usage),
            "rules_option": f"recording_rules={mode}" if option else "none (this PrometheusSource has no "
                            "recording-rules option: with and without are the same scan)"}


def floor_queries(window_s: int, step: int = STEP) -> dict[str, str]:
    """The two batched queries a recommendation needs, over subqueries of the raw series."""
    app = 'container!="", container!="POD"'
    cpu = f"sum by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{{{app}}}[{step}s]))"
    memory = f"max by (namespace, pod, container) (container_memory_working_set_bytes{{{app}}})"
    return {"cpu_p99": f"quantile_over_time(0.99, ({cpu})[{window_s}s:{step}s])",
            "memory_max": f"max_over_time(({memory})[{window_s}s:{step}s])"}


def floor_pass(url: str, start: int, end: int) -> dict:
    session = requests.Session()

    def send(expr: str) -> int:
        answer = session.get(f"{url}/api/v1/query", params={"query": expr, "time": end}, timeout=900)
        answer.raise_for_status()
        return len(answer.json()["data"]["result"])

    queries = floor_queries(end - start)
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(queries)) as pool:
        counts = list(pool.map(send, queries.values()))
    return {"seconds": time.perf_counter() - began, "requests": len(queries), "containers": min(counts)}


def krr_pass(url: str, start: int, end: int) -> dict:
    import krr_pattern

    began = time.perf_counter()
    out = krr_pattern.run(url, end, end - start, STEP)
    return {"seconds": time.perf_counter() - began, "requests": out["requests"], "containers": out["recommended"],
            "objects": out["objects"]}


def child_main(name: str, url: str, start: int, end: int) -> dict:
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if name == "floor":
        out = floor_pass(url, start, end)
    elif name == "krr":
        out = krr_pass(url, start, end)
    else:
        out = project_pass(url, start, end, rules=name == "with_rules")
    out.update(seconds=round(out["seconds"], 3), rss_at_start_mib=round(rss_start, 1),
               peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    return out


# --------------------------------------------------------------------------- measuring (parent)


def prometheus_cpu(url: str) -> float:
    """Prometheus' own process_cpu_seconds_total."""
    for line in requests.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("process_cpu_seconds_total "):
            return float(line.split()[1])
    raise RuntimeError(f"{url}/metrics has no process_cpu_seconds_total")


def measure_pass(name: str, url: str, start: int, end: int) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cpu_before = prometheus_cpu(url)
    proc = subprocess.run([sys.executable, __file__, "pass", name, url, str(start), str(end)], capture_output=True,
                          text=True, timeout=4 * 3600, cwd=ROOT, env=env, check=False)
    cpu_after = prometheus_cpu(url)
    if proc.returncode != 0:
        raise RuntimeError(f"pass {name} failed (exit {proc.returncode}): {proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["prometheus_cpu_seconds"] = round(cpu_after - cpu_before, 2)
    return out


def check_rules(url: str, meta: dict, samples: int = 3) -> dict:
    """Recorded values against the rule expressions evaluated by the server, for a few pods and times."""
    from tests.support.promfloor_history import CPU_RULE, MEMORY_RULE, layout, narrowed, shipped_rule_exprs

    pcs = layout(meta["containers"])
    picks = [pcs[i * (len(pcs) - 1) // max(1, samples - 1)] for i in range(samples)]
    start, end = meta["start"], meta["end"]
    times = [start + STEP, (start + end) // 2 // STEP * STEP, end]
    worst, compared = 0.0, 0
    exprs = shipped_rule_exprs()

    def value(expr: str, at: int) -> float | None:
        result = requests.get(f"{url}/api/v1/query", params={"query": expr, "time": at}, timeout=60).json()
        rows = result["data"]["result"]
        return float(rows[0]["value"][1]) if len(rows) == 1 else None

    for pc in picks:
        extra = f', namespace="{pc.namespace}", pod="{pc.pod}", container="{pc.container}"'
        for rule in (CPU_RULE, MEMORY_RULE):
            expr = narrowed(exprs[rule], extra)
            for at in times:
                recorded, computed = value(f"{rule}{{{extra[2:]}}}", at), value(expr, at)
                if recorded is None or computed is None:
                    raise RuntimeError(f"{rule} or its expression has no value for {pc.pod}/{pc.container} at {at}")
                worst = max(worst, abs(recorded - computed) / max(abs(computed), 1e-12))
                compared += 1
    return {"compared": compared, "max_relative_difference": worst, "equal": worst < 1e-9,
            "how": "recorded series written by the history writer next to the raw series"}


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def summarise(runs: dict[str, list[dict]]) -> tuple[dict, dict]:
    medians = {name: {key: _median(rs, key) for key in ("seconds", "requests", "prometheus_cpu_seconds",
                                                         "peak_rss_mib")} | {"containers": rs[-1]["containers"]}
               for name, rs in runs.items()}

    def ratio(a: str, b: str, key: str) -> float:
        return round(medians[a][key] / max(medians[b][key], 1e-9), 2)

    ratios = {"with_rules_vs_floor_wall": ratio("with_rules", "floor", "seconds"),
              "with_rules_vs_floor_prom_cpu": ratio("with_rules", "floor", "prometheus_cpu_seconds"),
              "krr_vs_without_rules_wall": ratio("krr", "without_rules", "seconds"),
              "without_rules_vs_krr_prom_cpu": ratio("without_rules", "krr", "prometheus_cpu_seconds")}
    verdicts = {name: ("PASS" if (value <= TARGETS[name] if name != "krr_vs_without_rules_wall"
                                  else value >= TARGETS[name]) else "FAIL") for name, value in ratios.items()}
    return medians, {"ratios": ratios, "targets": TARGETS, "verdicts": verdicts}


def run(containers: int, hours: int, seed: int, rounds: int) -> dict:
    from bench_prometheus import start_server
    from tests.support.prometheus_server import PrometheusServer

    home, meta = dataset(containers, hours, seed)
    server = PrometheusServer(home)
    start_server(server)
    try:
        url, start, end = server.url, meta["start"], meta["end"]
        rules = check_rules(url, meta)
        measure_pass("floor", url, start, end)                   # warm-up (page cache), not counted
        runs: dict[str, list[dict]] = {name: [] for name in PASSES}
        for r in range(rounds):
            order = PASSES[r % len(PASSES):] + PASSES[:r % len(PASSES)]    # alternate who goes first
            for name in order:
                print(f"promfloor {containers:,} x {hours} h: round {r + 1}/{rounds} {name} ...", file=sys.stderr,
                      flush=True)
                runs[name].append(measure_pass(name, url, start, end))
    finally:
        server.stop()
    medians, targets = summarise(runs)
    return {"containers": containers, "hours": hours, "seed": seed, "dataset": meta, "rules_check": rules,
            "rules_option": runs["with_rules"][-1].get("rules_option"), "rounds": rounds,
            "floor_queries": floor_queries(end - start), "runs": runs, "median": medians, **targets}


def report(size: dict) -> str:
    lines = [f"{size['containers']:,} containers x {size['hours']} h:"]
    for name, m in size["median"].items():
        lines.append(f"  {name:14s} wall {m['seconds']:8.2f} s  requests {m['requests']:8,.0f}  "
                     f"prometheus CPU {m['prometheus_cpu_seconds']:7.2f} s  peak RSS {m['peak_rss_mib']:6.0f} MiB")
    for name, value in size["ratios"].items():
        bound = ("<=" if name != "krr_vs_without_rules_wall" else ">=") + f" {size['targets'][name]}"
        lines.append(f"  {size['verdicts'][name]}  {name} = {value} (target {bound})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["pass"]:
        print(json.dumps(child_main(argv[1], argv[2], int(argv[3]), int(argv[4]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="200 containers x 1 day")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.containers, args.hours = 200, 24
    try:
        result = run(args.containers, args.hours, args.seed, args.rounds)
    except RuntimeError as exc:
        print(f"bench_promfloor: {exc}", file=sys.stderr)
        return 2
    print(report(result), file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
