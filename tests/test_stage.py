"""The content-addressed stage cache: reuse, invalidation, corruption, crashes and concurrent jobs."""

from __future__ import annotations

import gc
import logging
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
import stages_for_tests

from synpo import stage
from synpo.stage import Runner


@pytest.fixture
def runner(tmp_path):
    return Runner(tmp_path / "cache", tmp_path / "run")


def test_same_config_and_inputs_reuse_the_entry(runner, tmp_path):
    a = runner.run("a", stages_for_tests.run, config={"value": "x"})
    again = runner.run("a-again", stages_for_tests.run, config={"value": "x"})
    assert again.key == a.key and [r.reused for r in runner.records] == [False, True]
    assert (tmp_path / "run" / "stages" / "a-again" / "value.txt").read_text() == "x"
    # Hard links: the run directory's copy survives pruning of the cache.
    assert os.stat(a / "value.txt").st_ino == os.stat(tmp_path / "run" / "stages" / "a" / "value.txt").st_ino


class Cycle:
    pass


def test_collections_inside_a_stage_skip_the_objects_alive_before_it(runner):
    """Libraries run full garbage collections inside stages (~150 in a paper preset's run), each of which scanned
    every live object. The runner collects once and freezes the survivors before a stage: a collection inside it
    scans the stage's own objects, and the garbage left before the stage is still collected."""
    gc.disable()
    try:
        alive = [{"n": i} for i in range(400_000)]
        t0 = time.perf_counter()
        gc.collect()
        before = time.perf_counter() - t0
        dropped = Cycle()
        dropped.me = dropped
        ref = weakref.ref(dropped)
        del dropped
        art = runner.run("a", stages_for_tests.run, config={"value": "x", "collect": True})
    finally:
        gc.unfreeze()
        gc.enable()
    assert ref() is None
    assert art.counts["collect_seconds"] < before / 10, (art.counts, before)
    assert len(alive) == 400_000


def test_a_changed_config_or_input_gives_a_new_key(runner):
    a = runner.run("a", stages_for_tests.run, config={"value": "x"})
    b = runner.run("b", stages_for_tests.run, config={"value": "y"})
    c = runner.run("c", stages_for_tests.run, config={"value": "z"}, inputs={"source": a})
    d = runner.run("d", stages_for_tests.run, config={"value": "z"}, inputs={"source": b})
    assert len({a.key, b.key, c.key, d.key}) == 4
    assert (d / "value.txt").read_text() == "yz" and d.counts == {"length": 2}


def test_a_data_file_edited_in_place_gives_a_new_key(runner, tmp_path):
    data = tmp_path / "seed.jsonl"
    data.write_text('{"prompt": "a"}\n')
    first = runner.run("a", stages_for_tests.run, config={"value": "x", "file": str(data)})
    same = runner.run("b", stages_for_tests.run, config={"value": "x", "file": str(data)})
    data.write_text('{"prompt": "b"}\n')  # same path, new content
    edited = runner.run("c", stages_for_tests.run, config={"value": "x", "file": str(data)})
    assert same.key == first.key and edited.key != first.key
    # Shipped files count by content too; hub ids and folders are not files.
    assert list(stage.config_files({"seed": "pkg://synpo/data/seed_demo/train.jsonl"})) == [
        "pkg://synpo/data/seed_demo/train.jsonl"
    ]
    assert stage.config_files({"hub_id": "openbmb/UltraFeedback", "dir": str(tmp_path), "dtype": "float32"}) == {}


@pytest.mark.parametrize("verify", ["size", "sha256"])
def test_a_corrupted_entry_is_detected_and_recomputed(tmp_path, caplog, verify):
    runner = Runner(tmp_path / "cache", tmp_path / "run", verify=verify)
    a = runner.run("a", stages_for_tests.run, config={"value": "x"})
    (a / "value.txt").unlink()
    (a / "value.txt").write_text("y" if verify == "sha256" else "garbage")
    with caplog.at_level(logging.WARNING):
        again = runner.run("a", stages_for_tests.run, config={"value": "x"})
    assert "corrupted" in caplog.text
    assert not runner.records[-1].reused and (again / "value.txt").read_text() == "x"


def test_a_failing_stage_leaves_finished_stages_and_no_entry(runner, tmp_path):
    a = runner.run("a", stages_for_tests.run, config={"value": "x"})
    with pytest.raises(RuntimeError):
        runner.run("b", stages_for_tests.run, config={"value": "y", "fail": True}, inputs={"source": a})
    assert (a / "value.txt").read_text() == "x"
    entries = [p.name for p in (tmp_path / "cache" / "stages_for_tests").iterdir()]
    assert sum(name.endswith(".partial") for name in entries) == 1
    assert a.key in entries and len([n for n in entries if "." not in n]) == 1


CHILD = """
import sys
sys.path.insert(0, {tests!r})
import stages_for_tests
from pathlib import Path
from synpo.stage import Runner
runner = Runner(Path({cache!r}), Path({run!r}))
art = runner.run("slow", stages_for_tests.run, config={{"value": "v", "sleep": {sleep}}})
print(art.key, runner.records[-1].reused)
"""


def _child(tmp_path: Path, sleep: float, name: str) -> subprocess.Popen:
    code = CHILD.format(
        tests=str(Path(__file__).parent), cache=str(tmp_path / "cache"), run=str(tmp_path / name), sleep=sleep
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def test_a_killed_stage_is_recomputed_and_never_taken_as_finished(tmp_path):
    proc = _child(tmp_path, 30, "run1")
    started = tmp_path / "cache" / "stages_for_tests"
    deadline = time.monotonic() + 60
    while not list(started.glob("*.partial/started")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not [p for p in started.iterdir() if p.is_dir() and not p.name.endswith(".partial")]
    rerun = Runner(tmp_path / "cache", tmp_path / "run2")
    art = rerun.run("slow", stages_for_tests.run, config={"value": "v", "sleep": 0})
    assert (art / "value.txt").read_text() == "v" and not rerun.records[-1].reused


def test_concurrent_jobs_compute_an_entry_once(tmp_path):
    jobs = [_child(tmp_path, 2, f"run{i}") for i in range(2)]
    outputs = [job.communicate(timeout=120)[0].split() for job in jobs]
    assert outputs[0][0] == outputs[1][0]
    assert sorted(o[1] for o in outputs) == ["False", "True"]


def test_code_version_follows_the_library_code_a_stage_imports(tmp_path, monkeypatch):
    """Editing a module the stage only imports (inside a function, relatively) must invalidate its entries."""
    package = tmp_path / "toypkg"
    (package / "stages").mkdir(parents=True)
    for init in (package / "__init__.py", package / "stages" / "__init__.py"):
        init.write_text("")
    (package / "stages" / "work.py").write_text("def run(out, config):\n    from ..lib import helper\n")
    (package / "lib.py").write_text("def helper():\n    return 1\n")
    (package / "unrelated.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(stage, "PROJECT_PACKAGES", ("toypkg",))

    def version() -> str:
        stage.code_version_of.cache_clear()
        return stage.code_version_of("toypkg.stages.work")

    before = version()
    (package / "unrelated.py").write_text("X = 2\n")
    assert version() == before
    (package / "lib.py").write_text("def helper():\n    return 2\n")
    assert version() != before


def test_stage_code_includes_the_library_and_evaluation_code_it_runs():
    assert {"synpo.training", "synpo.stages.simpo"} <= set(stage._project_modules("synpo.stages.simpo"))
    assert "synpo.evaluation.alpaca" in stage._project_modules("synpo.stages.evaluate")


NOBODY = 65534


def _as_another_user(fn) -> int:
    """Run `fn` in a forked child that has dropped to an unprivileged uid (root ignores permission bits, and the
    tests run as root); 0 when it returns, 13 on PermissionError, 1 on anything else (printed)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            if os.geteuid() == 0:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            fn()
            code = 0
        except PermissionError:
            code = 13
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.fixture
def shared_tmp():
    """A folder every user can reach (pytest's own tmp_path is private to root)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="synpo-shared-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def test_a_finished_entry_cannot_be_written_through_a_run_directory(shared_tmp):
    linked = shared_tmp / "run" / "stages" / "a" / "value.txt"

    def as_user():
        runner = Runner(shared_tmp / "cache", shared_tmp / "run")
        art = runner.run("a", stages_for_tests.run, config={"value": "x"})
        assert os.stat(linked).st_ino == os.stat(art / "value.txt").st_ino  # the user's own files, hard-linked
        (shared_tmp / "own.txt").write_text("a file of one's own is writable")
        with linked.open("a") as f:  # PermissionError: the entry's files are read-only
            f.write("edited in place")

    assert _as_another_user(as_user) == 13
    assert linked.read_text() == "x" and stage.verify_entry(linked.parent.resolve(), "sha256") is None
    entry = next(p for p in (shared_tmp / "cache" / "stages_for_tests").iterdir() if p.is_dir())
    assert all(not p.stat().st_mode & 0o222 for p in entry.iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as two users")
def test_another_users_run_gets_symlinks_where_protected_hardlinks_refuse_links(shared_tmp):
    """A cache shared by several users: under fs.protected_hardlinks=1 the kernel refuses a hard link to another
    user's read-only file, and the run directory falls back to a symlink to the entry."""
    (shared_tmp / "cache").mkdir(mode=0o755)
    art = Runner(shared_tmp / "cache", shared_tmp / "root-run").run("a", stages_for_tests.run, config={"value": "x"})
    protected = Path("/proc/sys/fs/protected_hardlinks").read_text().strip() == "1"
    run = shared_tmp / "user-run" / "stages" / "a"

    def as_user():
        again = Runner(shared_tmp / "cache", shared_tmp / "user-run").run(
            "a", stages_for_tests.run, config={"value": "x"}
        )
        assert again.key == art.key and (run / "value.txt").read_text() == "x"
        assert run.is_symlink() == protected

    assert _as_another_user(as_user) == 0


def test_code_version_parses_each_library_module_once_per_process():
    """Every stage's digest walks the same library modules: a second stage parses none of them again."""
    stage._imported_names.cache_clear()
    stage._project_modules("synpo.stages.simpo")
    parsed = stage._imported_names.cache_info().misses
    modules = stage._project_modules("synpo.stages.spa_dpo")
    assert stage._imported_names.cache_info().misses - parsed < len(modules) / 2
    assert "synpo.training" in modules
