"""Issue 21 §2: every table of docs/results.md is generated from the stored result files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from odeattn.experiments import _runs
from odeattn.experiments.__main__ import main
from odeattn.experiments._page import BLOCKS, MARK, page_main, render
from odeattn.experiments._plan import PLAN

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results.md"


def test_the_page_matches_the_stored_result_files(capsys):
    """Fails when a table of docs/results.md and docs/data disagree: run `… report`."""
    argv = ["--page", str(PAGE), "--data", str(ROOT / "docs" / "data"), "--check"]
    assert page_main(argv, "report") == 0, capsys.readouterr().out


def test_every_table_of_the_page_is_a_generated_block():
    text = PAGE.read_text()
    names = [n for n, _ in MARK.findall(text)]
    assert sorted(set(names)) == sorted(BLOCKS)  # every block is on the page, once at least
    outside = MARK.sub("", text)
    tables = [ln for ln in outside.splitlines() if ln.startswith("|")]
    assert tables == []  # no hand-written table left


def test_the_plan_block_lists_every_pre_registered_test():
    blocks = dict(MARK.findall(PAGE.read_text()))
    for t in PLAN:  # issue 19's tests are planned in §6 (their own block), the others in "Plan"
        body = blocks["oneshot_plan" if t.claim.startswith("oneshot_") else "plan"]
        assert f"| {t.claim} | {t.id} | {t.role} |" in body
    assert "oneshot_" not in blocks["plan"]


def _fake(kwargs, seed, epochs, **setting):
    acc = 0.9 + (0.02 if kwargs.get("adaptor") == "stepnet" else 0.0) + 0.001 * seed
    return {
        "val_accuracy": acc,
        "params": 10,
        "adaptor_params": 5,
        "measured_blocks": {"0": 7, "1": 7, "2": 7},
        "tns_step": 0.1,
        "tns_fd": 0.1,
        "p_hat_step": [[0.0] * 11] * 11,
        "p_hat_fd": [[0.0] * 11] * 11,
        "gates": [{"name": "b", "stage": 0, "first": False, "gate": 0.25}],
    }


def test_report_collects_a_run_and_writes_its_numbers_and_provenance(tmp_path, monkeypatch):
    monkeypatch.setattr(_runs, "train_variant", _fake)
    out = tmp_path / "runs"
    assert main(["run", "stepnet_vs_se", "--quick", "--out", str(out)]) == 0
    page = tmp_path / "page.md"
    page.write_text("intro\n<!-- table:claim_stepnet_vs_se -->\nold\n<!-- /table -->\nend\n")
    data = tmp_path / "data"
    argv = ["--page", str(page), "--data", str(data)]
    assert page_main([*argv, "--check"], "report") == 1  # the page is stale
    assert page_main([*argv, "--collect", str(out)], "report") == 0
    assert (data / "stepnet_vs_se" / "result.json").is_file()
    text = page.read_text()
    res = json.loads((data / "stepnet_vs_se" / "result.json").read_text())
    t = res["tests"][0]
    assert f"{t['estimate']:.3f} [{t['lo']:.3f}, {t['hi']:.3f}]" == "0.020 [0.020, 0.020]"
    assert "0.020 [0.020, 0.020] (95.0 %)" in text and "**held**" in text
    assert res["provenance"]["commit"][:10] in text and "1 torch thread(s)" in text
    assert text.startswith("intro\n") and text.endswith("<!-- /table -->\nend\n")
    assert page_main([*argv, "--check"], "report") == 0


def test_a_missing_result_names_its_command():
    body = render("<!-- table:claim_lth4sa -->\n<!-- /table -->", Path("/nonexistent"))
    assert "Not run yet" in body and "run lth4sa --jobs 2" in body


def test_an_unknown_block_exits_2_with_one_line(tmp_path, capsys):
    page = tmp_path / "p.md"
    page.write_text("<!-- table:sumary -->\n<!-- /table -->\n")
    assert page_main(["--page", str(page), "--data", str(tmp_path)], "report") == 2
    err = capsys.readouterr().err
    assert "did you mean 'summary'" in err and err.count("\n") == 1
    assert page.read_text() == "<!-- table:sumary -->\n<!-- /table -->\n"  # nothing written


def test_collect_needs_a_folder(tmp_path, capsys):
    page = tmp_path / "p.md"
    page.write_text("x\n")
    argv = ["--page", str(page), "--data", str(tmp_path), "--collect", str(tmp_path / "no")]
    assert page_main(argv, "report") == 2 and "--collect" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_every_block_renders_without_files(name, tmp_path):
    shutil.rmtree(tmp_path)
    body = BLOCKS[name](tmp_path)
    assert body.strip() and "nan" not in body
