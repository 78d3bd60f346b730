"""A non-editable install: the built wheel carries the configs, suites and sweep recipes under `synpo`.

The wheel is built from the checkout's files and installed with `--no-deps` into a fresh venv that sees this
environment's dependencies through a .pth line (a path line, so the editable install's finder stays out); the
commands then run from a folder outside the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*cmd, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, f"{cmd}: {result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv with the wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    files = _run("git", "ls-files", "-co", "--exclude-standard", cwd=REPO).stdout.split()
    if not files:
        pytest.skip("not a git checkout: the wheel is built from the files git lists")
    src = root / "src"
    with tarfile.open(root / "src.tar", "w") as tar:
        for name in files:
            if (REPO / name).is_file():
                tar.add(REPO / name, arcname=name)
    with tarfile.open(root / "src.tar") as tar:
        tar.extractall(src, filter="data")
    pip = [sys.executable, "-m", "pip"]
    _run(*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", root / "dist", ".", cwd=src)
    (wheel,) = (root / "dist").glob("synpo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "synpo/conf/config.yaml" in names and "synpo/multirun/recipe/demo_beta.yaml" in names
    assert "synpo/evaluation/suites/mt_bench_mini/question.jsonl" in names
    assert not [n for n in names if n.split("/")[0] in ("evaluation", "multirun", "conf")], "top-level packages"

    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)  # venv builds on the base interpreter
    python = venv / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root).stdout.strip()
    deps = _run(sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root)
    (Path(purelib) / "synpo-deps.pth").write_text(deps.stdout.strip() + "\n")
    _run(*pip, "--python", python, "install", "--quiet", "--no-deps", wheel, cwd=root)
    return venv / "bin"


@pytest.mark.slow
def test_wheel_runs_the_cli_from_anywhere(installed, tmp_path):
    synpo = installed / "synpo"
    assert "experiment: cpu_demo" in _run(synpo, "--help", cwd=tmp_path).stdout
    job = _run(synpo, "--cfg", "job", "experiment=paper_mistral", cwd=tmp_path).stdout
    assert "alignment-handbook/zephyr-7b-sft-full" in job
    sweep = _run(synpo, "-m", "+recipe=demo_beta", "--cfg", "job", cwd=tmp_path).stdout
    assert sweep.count("# job ") >= 2
    where = _run(installed / "python", "-c", "import synpo.evaluation as e; print(e.__file__)", cwd=tmp_path).stdout
    assert "site-packages/synpo/evaluation/" in where
    for name in ("evaluation", "multirun", "conf"):
        result = _run(installed / "python", "-c", f"import {name}", cwd=tmp_path, check=False)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, name
