"""``python -m odeattn.stiffness``: report values, figures, checkpoints, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from odeattn.data import load_dataset
from odeattn.models import create_model
from odeattn.stiffness import measure, tns
from odeattn.stiffness.__main__ import main

PLAIN = "digits_resnet:blocks=[3,3,3],widths=[16,16,16]"
SE = "digits_resnet:adaptor=se,blocks=[3,3,3],widths=[16,16,16]"
SMALL = {"blocks": [3, 3, 3], "widths": [16, 16, 16]}


def test_two_models_side_by_side(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "--model",
            PLAIN,
            "--model",
            SE,
            "--data",
            "digits",
            "--out",
            str(out),
            "--samples",
            "60",
            "--grid",
            "9",
            "--per-sample",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "TNS (step)" in printed and PLAIN in printed
    rep = json.loads((out / "report.json").read_text())
    assert [m["model"]["label"] for m in rep["models"]] == [PLAIN, SE]
    for name in ("delta", "nsi_depth", "stiffness_proportion", "tns_accuracy"):
        assert (out / f"{name}.png").stat().st_size > 1000
    assert set(rep["correlation"]) >= {"kendall", "spearman"}
    for m in rep["models"]:
        assert m["definition"] == "step" and m["n_samples"] == 60 and m["n_blocks"] == 6
        assert m["tns"] == pytest.approx(tns(m["per_sample"]["nsi"], m["stage"]), rel=1e-12)
    # the same model built the same way and measured directly gives the same numbers
    torch.manual_seed(0)
    model = create_model("digits_resnet", adaptor="se", **SMALL)
    direct = measure(model, load_dataset("digits"), max_samples=60)
    assert rep["models"][1]["tns"] == pytest.approx(direct["tns"], rel=1e-6)
    assert rep["models"][1]["accuracy"] == direct["accuracy"]


def test_checkpoint_alone_builds_its_architecture(tmp_path):
    torch.manual_seed(3)
    model = create_model("digits_resnet", **SMALL)
    ckpt = tmp_path / "plain.pt"
    torch.save({"model": model.state_dict(), "architecture": model.architecture()}, ckpt)
    out = tmp_path / "out"
    assert (
        main(
            [
                "--checkpoint",
                str(ckpt),
                "--data",
                "digits",
                "--out",
                str(out),
                "--samples",
                "40",
                "--kind",
                "fd",
                "--grid",
                "5",
            ]
        )
        == 0
    )
    rep = json.loads((out / "report.json").read_text())["models"][0]
    direct = measure(model, load_dataset("digits"), max_samples=40, kind="fd")
    assert rep["definition"] == "fd" and rep["tns"] == pytest.approx(direct["tns"], rel=1e-6)
    assert "per_sample" not in rep


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--model", "digits_resnte"], "digits_resnet"),
        (["--model", "digits_resnet:blockz=[3,3,3]"], "blocks"),
        (["--model", "digits_resnet:oops"], "key=value"),
        (["--checkpoint", "/nonexistent/x.pt"], "does not exist"),
        (
            ["--model", "digits_resnet", "--checkpoint", "a.pt", "--checkpoint", "b.pt"],
            "once per model",
        ),
        (["--arch", "/nonexistent/arch.yaml"], "No such file"),
        ([], "at least one"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, match):
    rc = main([*argv, "--data", "digits", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and match in err and err.count("\n") == 1 and "Traceback" not in err


def test_module_entry_point_and_argparse_errors(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "odeattn.stiffness",
            "--model",
            "digits_resnet",
            "--data",
            "digits",
            "--out",
            str(tmp_path),
            "--kind",
            "stepp",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_arch_file_in_the_train_and_search_form(tmp_path):
    """`--arch` reads the `model:` YAML that `odeattn.train` writes and the search exports."""
    import yaml

    arch = create_model("digits_resnet", **SMALL).architecture()
    path = tmp_path / "best.yaml"
    path.write_text(yaml.safe_dump({"model": arch, "train": {"recipe": "digits"}}))
    out = tmp_path / "out"
    rc = main(
        [
            "--arch",
            str(path),
            "--data",
            "digits",
            "--out",
            str(out),
            "--samples",
            "20",
            "--grid",
            "5",
        ]
    )
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["models"][0]["n_blocks"] == 6 and rep["models"][0]["n_samples"] == 20
