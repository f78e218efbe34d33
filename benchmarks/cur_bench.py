"""CUR 2.0 through DuckDB at scale: generate a large CUR, query it with the bill SQL, time it, peak memory.

    python benchmarks/cur_bench.py                    # 1 GB-class CUR (default; fits a shared machine's disk)
    python benchmarks/cur_bench.py --gb 10            # the 10 GB-class run (needs ~11 GB free in --dir)
    python benchmarks/cur_bench.py --gb 0.05 --quick  # harness check
    python benchmarks/run.py --only cur               # the same, from the benchmark runner

The generated export is one month (BILLING_PERIOD=2024-05, hourly line items)
of an account running many clusters: 20,000 instances, 20,000 volumes, NAT
gateways, load balancers and other services, Usage / SavingsPlanCoveredUsage /
SavingsPlanNegation / Tax lines, random costs (so Parquet compresses as real
data does, not to nothing). The cluster asked for ("bench") owns 300 instances
and their 300 volumes, named by resource id and tagged. Files are written by
DuckDB, zstd-compressed, ``--rows-per-file`` rows each, until ``--gb`` is
reached. A **fresh process** then runs ``curduck.query_cur_files`` (the
production path: confined DuckDB, column check, the one SQL, rows -> Bill)
and reports wall time and peak RSS (``ru_maxrss``). Figures go to
``benchmarks/results/cur.json``; the generated files are deleted afterwards.
"""
from __future__ import annotations

import argparse
import glob
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLUSTER_NODES = 300
FLEET = 20_000            # instances (and volumes) in the account
HOURS = 744               # May 2024

ROW_SQL = f"""
SELECT
  TIMESTAMP '2024-05-01' AS bill_billing_period_start_date,
  TIMESTAMP '2024-05-01' + to_hours(h) AS line_item_usage_start_date,
  TIMESTAMP '2024-05-01' + to_hours(h + 1) AS line_item_usage_end_date,
  CASE WHEN kind < 5 THEN printf('i-%017x', k) WHEN kind < 8 THEN printf('vol-%017x', k)
       WHEN kind = 8 THEN printf('nat-%017x', k % 500) ELSE printf('arn:aws:s3:::bucket-%d', k % 3000) END
    AS line_item_resource_id,
  CASE WHEN kind = 9 AND r < 0.01 THEN 'Tax' WHEN kind < 5 AND r < 0.3 THEN 'SavingsPlanCoveredUsage'
       WHEN kind < 5 AND r < 0.35 THEN 'SavingsPlanNegation' ELSE 'Usage' END AS line_item_line_item_type,
  CASE WHEN kind = 9 THEN 'AmazonS3' ELSE 'AmazonEC2' END AS line_item_product_code,
  CASE WHEN kind < 4 THEN 'USE1-BoxUsage:m5.xlarge' WHEN kind = 4 THEN 'USE1-SpotUsage:m5.large'
       WHEN kind < 8 THEN 'USE1-EBS:VolumeUsage.gp3' WHEN kind = 8 THEN 'USE1-NatGateway-Hours'
       ELSE 'USE1-TimedStorage-ByteHrs' END AS line_item_usage_type,
  '123456789012' AS line_item_usage_account_id,
  round(r * 0.4, 8) AS line_item_unblended_cost,
  'USD' AS line_item_currency_code,
  round(r * 0.4 + 0.01, 8) AS pricing_public_on_demand_cost,
  round(r * 0.28, 8) AS savings_plan_savings_plan_effective_cost,
  0.0 AS reservation_effective_cost,
  map(['user_kubernetes_io_cluster_' || CASE WHEN k < {CLUSTER_NODES} THEN 'bench' ELSE 'other' || (k % 40) END,
       'user_team'], ['owned', 'team-' || (k % 97)]) AS resource_tags
FROM (SELECT i % {HOURS} AS h, (i // {HOURS}) % {FLEET} AS k, ((i // {HOURS}) % {FLEET}) % 10 AS kind,
             random() AS r FROM range($start, $stop) t(i))
"""


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def generate(root: Path, gb: float, rows_per_file: int) -> dict:
    import duckdb

    out = root / "cur2" / "data" / "BILLING_PERIOD=2024-05"
    out.mkdir(parents=True, exist_ok=True)
    began, written, files, start = time.perf_counter(), 0, 0, 0
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    while written < gb * 1e9:
        path = out / f"part-{files:05d}.parquet"
        sql = ROW_SQL.replace("$start", str(start)).replace("$stop", str(start + rows_per_file))
        con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
        written += path.stat().st_size
        files, start = files + 1, start + rows_per_file
    return {"rows": start, "files": files, "bytes": written, "bytes_per_row": round(written / start, 1),
            "generate_seconds": round(time.perf_counter() - began, 1)}


def measure(root: Path, threads: int | None) -> dict:
    sys.path.insert(0, str(HERE.parent / "operator"))
    from finops_operator.sources.curduck import query_cur_files
    from finops_operator.cur.sql import CurScope

    rss_start = peak_rss_mib()
    files = [Path(p) for p in sorted(glob.glob(str(root / "cur2" / "data" / "*" / "*.parquet")))]
    ids = [f"i-{k:017x}" for k in range(CLUSTER_NODES)] + [f"vol-{k:017x}" for k in range(CLUSTER_NODES)]
    scope = CurScope.for_cluster("bench", datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC),
                                 resource_ids=ids)
    began = time.perf_counter()
    bill = query_cur_files(files, scope, cache_dir=root, threads=threads)
    seconds = time.perf_counter() - began
    return {"query_seconds": round(seconds, 2), "peak_rss_mib": peak_rss_mib(), "rss_at_start_mib": rss_start,
            "bill_lines": len(bill.lines), "bill_total_usd": round(bill.total(), 2),
            "by_category": {k.value: round(v, 2) for k, v in bill.by_category().items()},
            "memory_measure": "peak RSS (resource.getrusage ru_maxrss) of a fresh process", "threads": threads}


def _child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False,
                          timeout=7200)
    if proc.returncode != 0:
        raise SystemExit(f"cur_bench {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(gb: float, rows_per_file: int, workdir: Path | None, threads: int | None) -> dict:
    root = Path(tempfile.mkdtemp(prefix="finops-cur-bench-", dir=workdir))
    try:
        free = shutil.disk_usage(root).free
        if free < gb * 1.2e9:
            raise SystemExit(f"{root}: {free / 1e9:.1f} GB free, the {gb:g} GB CUR needs {gb * 1.2:.1f} GB; "
                             "use --dir on a larger disk or a smaller --gb")
        print(f"cur: generating a {gb:g} GB-class CUR 2.0 in {root} ...", file=sys.stderr, flush=True)
        generated = _child("generate", str(root), "--gb", str(gb), "--rows-per-file", str(rows_per_file))
        print(f"cur: {generated['rows']:,} rows in {generated['files']} files; querying ...", file=sys.stderr,
              flush=True)
        measured = _child("measure", str(root), *(["--threads", str(threads)] if threads else []))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"benchmark": "CUR 2.0 bill SQL through DuckDB (issue 9)", "generated": generated, "query": measured}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", nargs="?", choices=("generate", "measure"), help="internal: one child step")
    parser.add_argument("root", nargs="?", type=Path)
    parser.add_argument("--gb", type=float, default=1.0, help="size of the generated CUR in GB (10 = the full run)")
    parser.add_argument("--rows-per-file", type=int, default=5_000_000)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all CPUs)")
    parser.add_argument("--dir", type=Path, default=None, help="where to generate (default: the temp directory)")
    parser.add_argument("--quick", action="store_true", help="tag the result as a harness check")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    if args.step == "generate":
        print(json.dumps(generate(args.root, args.gb, args.rows_per_file)))
        return 0
    if args.step == "measure":
        print(json.dumps(measure(args.root, args.threads)))
        return 0
    result = run(args.gb, args.rows_per_file, args.dir, args.threads)
    result["quick"] = args.quick
    sys.path.insert(0, str(HERE))
    from run import machine
    result["machine"] = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cur.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
