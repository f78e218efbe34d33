"""`finops costs` as people and scripts see it: table text, JSON, CSV, windows and bad options."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest
from rich.console import Console

from finops_operator.cli import costs as costs_cli
from finops_operator.cli.main import build_parser, main
from finops_operator.costreport import CostWindow, cost_report
from finops_operator.models.costs import Allocation
from tests.support.fixtures_costs import END, START, allocation, bill, container


class Data:
    """A cluster whose data covers START..END; allocating a window records it."""

    def __init__(self, *, with_bill: bool = True):
        self.windows: list[CostWindow] = []
        self.with_bill = with_bill

    def __call__(self) -> costs_cli.CostData:
        return costs_cli.CostData(description="hand-built cluster", now=END, span=(START, END), allocate=self.allocate)

    def allocate(self, window: CostWindow) -> tuple[Allocation, object]:
        self.windows.append(window)
        alloc = allocation(bill_total=1000.0 if self.with_bill else None)
        alloc.start, alloc.end = window.start, window.end
        return alloc, bill() if self.with_bill else None


def run(argv: list[str], data: Data, capsys) -> tuple[str, str]:
    args = build_parser().parse_args(["costs", *argv])
    console = Console(record=True, width=160, force_terminal=False)
    assert costs_cli.run_costs(args, console, data=data()) == 0
    out = capsys.readouterr().out
    return out, console.export_text()


def test_table_shows_rows_kinds_footer_and_sources(capsys):
    data = Data()
    _, text = run(["--window", "7d"], data, capsys)
    assert data.windows == [CostWindow("7d", END.replace(day=8), END)]
    assert "Cost by namespace, 2024-06-08 00:00 .. 2024-06-15 00:00 UTC (--window 7d)" in text
    lines = text.splitlines()
    row = next(line for line in lines if "payments" in line)
    assert "$400.00" in row and "$2.38" in row and "$300.00" in row and "$100.00" in row and "40.4%" in row
    assert any("idle" in line and "$180.00" in line for line in lines)
    assert any("shared" in line and "$50.00" in line for line in lines)
    assert any("unallocated" in line and "$20.00" in line for line in lines)
    assert ("Total $990.00 ($5.89/hour); bill $1,000.00 (cur:duckdb); residual +$10.00 (1.00% of the bill)"
            in text)
    assert "Prices (share of node cost): list 71.6% · spot 28.4%" in text
    assert "Idle share" not in text and "note:" not in text
    assert text.splitlines()[0] == "hand-built cluster"


def test_window_beyond_the_data_is_a_note_and_the_data_span_is_used(capsys):
    data = Data()
    _, text = run(["--window", "30d"], data, capsys)
    assert (data.windows[0].start, data.windows[0].end) == (START, END)
    assert "note: --window 30d asks for 2024-05-16 00:00 .. 2024-06-15 00:00, but the data covers" in text
    assert "14.0 of 30.0 days" in text


def test_no_bill_says_so(capsys):
    _, text = run(["--by", "team"], Data(with_bill=False), capsys)
    assert "Total $990.00" in text and "no bill: prices only, the residual is unknown" in text
    assert "Team" in text and "unassigned" in text


def test_top_and_label_grouping(capsys):
    _, text = run(["--by", "label:app", "--top", "2"], Data(), capsys)
    assert "Label app" in text and "other (3 rows)" in text and "$190.00" in text


def test_json_goes_to_stdout_with_the_schema(capsys):
    out, _ = run(["--output", "json", "--by", "workload", "--top", "1", "--window", "2024-06-01..2024-06-07"],
                 Data(), capsys)
    data = json.loads(out)
    assert data["schema"] == "finops.costs/v1" and data["by"] == "workload"
    assert data["window"] == {"asked": "2024-06-01..2024-06-07", "start": "2024-06-01T00:00:00+00:00",
                              "end": "2024-06-08T00:00:00+00:00", "hours": 168.0}
    assert [r["label"] for r in data["rows"]] == ["payments/Deployment/api", "other (3 rows)", "idle", "shared",
                                                  "unallocated"]
    assert data["bill"]["residualPercent"] == 1.0 and data["notes"] == []


def test_csv_is_rfc4180(capsys):
    extra = [container('odd, "quoted" ns', "Deployment/x", 1.5)]
    data = Data()
    data.allocate = lambda w: (allocation(extra=extra), bill())           # type: ignore[method-assign]
    out, _ = run(["--output", "csv"], data, capsys)
    assert out.startswith("label,kind,key,cost,cpu_cost,memory_cost,idle_share,shared_share,percent,charges\r\n")
    assert out.endswith("\r\n") and "\n" not in out.replace("\r\n", "")
    assert '"odd, ""quoted"" ns",allocated,"odd, ""quoted"" ns",1.50,1.13,0.38,0.00,0.00,0.15,1\r\n' in out
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert [r["label"] for r in rows][-3:] == ["idle", "shared", "unallocated"]
    assert rows[0] == {"label": "payments", "kind": "allocated", "key": "payments", "cost": "400.00",
                       "cpu_cost": "300.00", "memory_cost": "100.00", "idle_share": "0.00", "shared_share": "0.00",
                       "percent": "40.34", "charges": "2"}
    assert sum(float(r["cost"]) for r in rows) == pytest.approx(991.5)


def test_shares_columns_appear_when_the_policy_shares_idle_and_shared(capsys):
    shared_out = [replace(c, idle_cost=c.cost * 0.1, shared_cost=c.cost * 0.05) for c in allocation().charges[:4]]
    report = cost_report(Allocation(START, END, shared_out, bill_total=None), by="namespace")
    console = Console(record=True, width=160)
    costs_cli.show_costs(console, report)
    text = console.export_text()
    assert "Idle share" in text and "Shared share" in text
    assert any("payments" in line and "$40.00" in line and "$20.00" in line for line in text.splitlines())


@pytest.mark.parametrize("argv,message", [
    (["costs", "--window", "yesterday"], "--window: 'yesterday' is not a window; accepted: 7d, 30d"),
    (["costs", "--window", "2024-06-10..2024-06-01"], "--window: '2024-06-10..2024-06-01' ends before it starts"),
    (["costs", "--by", "pod"], "--by: 'pod' is not a grouping; use one of namespace, team"),
    (["costs", "--kubeconfig"], "--prometheus: a live cluster needs --prometheus URL"),
    (["costs", "--snapshot", "x.npz", "--prometheus", "http://localhost:9090"], "add --kubeconfig"),
])
def test_bad_options_exit_2_naming_the_option(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_top_must_be_a_positive_number(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["costs", "--top", "0"])
    assert exit_.value.code == 2
    assert "argument --top: '0' is not a positive whole number" in capsys.readouterr().err


def test_a_missing_snapshot_names_the_file(tmp_path, capsys):
    assert main(["costs", "--snapshot", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err


def test_a_snapshot_with_its_cur_file_reconciles_through_duckdb(tmp_path, capsys):
    """finops simulate --cur writes CUR 2.0 Parquet; finops costs --cur reads it with the one CUR SQL."""
    snap, cur = tmp_path / "s.npz", tmp_path / "cur.parquet"
    assert main(["simulate", "--out", str(snap), "--cur", str(cur)]) == 0
    capsys.readouterr()
    assert main(["costs", "--snapshot", str(snap), "--cur", str(cur), "--output", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bill"]["source"] == "cur:duckdb"
    assert abs(float(doc["bill"]["residual"])) <= 0.01 * float(doc["bill"]["total"]) and doc["totals"]["idle"] > 0


def test_every_subcommand_has_a_help_page(capsys):
    """argparse formats help strings with %: a stray % breaks `finops --help` (caught once from the wheel)."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for argv in [["--help"]] + [[name, "--help"] for name in commands]:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0, argv
        assert "usage: finops" in capsys.readouterr().out
