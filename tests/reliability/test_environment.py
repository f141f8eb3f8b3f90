"""A ``python -m odeattn.…`` launch under ``ulimit -v`` and with thread variables (issue 18 §16):
real processes, the limit set by ``bash -c 'ulimit -v …'``, the variables in their environment."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ENV, ROOT

from odeattn import _env
from odeattn._env import cores, import_need_mib, threads_from_env


def _under_limit(kib: int, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = " ".join(shlex.quote(a) for a in (sys.executable, "-m", *args))
    return subprocess.run(
        ["bash", "-c", f"ulimit -v {kib} && exec {cmd}"],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("module", ["odeattn.search", "odeattn.train", "odeattn.proxies"])
def test_a_too_small_address_space_is_one_line_and_exit_1(tmp_path, module):
    # 700 000 KiB: importing torch + scipy fails here with a MemoryError or ImportError traceback,
    # a C++ abort or OpenBLAS retrying forever, depending on the limit (measured 650 000-850 000)
    r = _under_limit(700_000, module, "--help", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("error: the address-space limit (ulimit -v) is 683 MiB, but")
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "`ulimit -v unlimited`" in r.stderr and r.stdout == ""


def test_running_out_of_memory_later_is_one_line_and_exit_1(tmp_path):
    # A limit the import fits in, and a network whose last stage cannot be allocated in it
    # (a 60000-channel 3x3 convolution: 130 GB); without the hook: a 30-line torch traceback.
    arch = {"name": "digits_resnet", "blocks": [1, 1, 1], "widths": [4, 8, 60_000]}
    (tmp_path / "big.yaml").write_text(yaml.safe_dump({"model": arch}))
    kib = (import_need_mib() + 3 * 1024) * 1024
    r = _under_limit(kib, "odeattn.train", "--arch", "big.yaml", "--data", "digits", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("error: out of memory under the address-space limit ulimit -v")
    assert "can't allocate memory" in r.stderr and "ulimit -v unlimited" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("value", ["", "abc", "0", "-1", "1.5"])
@pytest.mark.parametrize(
    "args",
    [
        ("odeattn.train", "--model", "digits_resnet", "--data", "digits", "--out", "OUT"),
        ("odeattn.search", str(ROOT / "studies/lth4sa.yaml"), "--runs-dir", "OUT"),
    ],
    ids=["train", "search"],
)
def test_a_bad_odeattn_threads_is_one_line_exit_2_before_anything_is_written(tmp_path, value, args):
    r = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=tmp_path,
        env={**ENV, "ODEATTN_THREADS": value},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr == (
        f"error: ODEATTN_THREADS must be a whole number >= 1, but got ODEATTN_THREADS={value!r}; "
        "unset it or give e.g. ODEATTN_THREADS=1\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_more_omp_threads_than_cores_is_one_warning_line(tmp_path):
    n = max(64, cores() + 1)  # 64 on this 2-core machine
    env = {k: v for k, v in ENV.items() if k != "ODEATTN_THREADS"}
    r = subprocess.run(
        [sys.executable, "-m", "odeattn.train", "--help"],
        cwd=tmp_path,
        env={**env, "OMP_NUM_THREADS": str(n)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and "usage:" in r.stdout, r.stderr
    assert r.stderr == (
        f"warning: OMP_NUM_THREADS={n} exceeds the {cores()} CPU core(s) this process may use; "
        f"threads will compete and slow training down: set OMP_NUM_THREADS={cores()} (or fewer)\n"
    )


def test_threads_from_env_is_the_one_reader():
    assert threads_from_env({}) is None
    assert threads_from_env({"ODEATTN_THREADS": "1", "OMP_NUM_THREADS": "1"}) == 1
    for bad in ("", " ", "abc", "0", "-3", "2.0"):
        with pytest.raises(ValueError, match=r"^ODEATTN_THREADS must be a whole number >= 1, but"):
            threads_from_env({"ODEATTN_THREADS": bad})


def test_the_count_in_effect_is_the_one_checked_against_the_cores(capsys, monkeypatch):
    monkeypatch.setattr(_env, "_warned", set())  # the warning is once per process
    many = str(cores() + 1)
    assert threads_from_env({"ODEATTN_THREADS": "1", "OMP_NUM_THREADS": many}) == 1
    assert capsys.readouterr().err == ""  # ODEATTN_THREADS=1 wins: nothing competes
    assert threads_from_env({"ODEATTN_THREADS": many}) == cores() + 1
    assert capsys.readouterr().err.startswith(f"warning: ODEATTN_THREADS={many} exceeds the")
