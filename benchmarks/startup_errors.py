"""How long `synpo` takes to report a config error or a bad local data file: the whole command, in a fresh process,
from start to the error message (targets: a config error under 3 s, a missing, malformed or empty data file under
5 s, named by its path).

    .venv/bin/python benchmarks/startup_errors.py            # prints one row per case, with the message

Each case must fail with exit code 2 and a message naming its key or file; the script exits non-zero otherwise or
when a case misses its target. Nothing is computed: every case fails before any stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SYNPO = str(Path(sys.executable).with_name("synpo"))


def cases(tmp: Path) -> list[tuple[str, float, list[str], str]]:
    """(what, target seconds, overrides, text the message must hold)."""
    bad = tmp / "malformed.jsonl"
    bad.write_text('{"id": "a", "prompt": "p", "gold": "g"}\n{"id": "b", "prompt":\n')
    empty = tmp / "empty.jsonl"
    empty.write_text("")
    missing = tmp / "missing.jsonl"
    spa = ["experiment=cpu_demo_spa"]
    return [
        ("unknown key", 3, ["foo=1"], "foo"),
        ("negative iterations", 3, ["method.iterations=-1"], "method.iterations=-1"),
        ("beta 0", 3, ["optimizer.beta=0"], "optimizer.beta=0.0"),
        ("top_p above 1", 3, ["generation.top_p=1.5"], "generation.top_p=1.5"),
        ("non-finite threshold", 3, ["reward.threshold=nan"], "reward.threshold=nan"),
        ("unknown prompt source", 3, ["method.prompt_source=web"], "method.prompt_source='web'"),
        ("SPA: counts per iteration", 3, [*spa, "method.iterations=4"], "method.prompts_per_iteration needs one"),
        ("malformed seed file", 5, [f"data.train_file={bad}"], f"{bad}:2"),
        ("empty seed file", 5, [f"data.train_file={empty}"], f"{empty} (data.train_file)"),
        ("missing seed file", 5, [f"data.train_file={missing}"], f"{missing} (data.train_file)"),
        ("empty corpus", 5, [f"corpus.file={empty}"], f"{empty} (corpus.file)"),
        (
            "empty prompt pool",
            5,
            [
                "method.prompt_source=ultrafeedback",
                "method.prompt_pool.source=jsonl",
                f"method.prompt_pool.file={empty}",
            ],
            f"{empty} (method.prompt_pool.file)",
        ),
        ("empty SPA seed", 5, [*spa, f"method.data.seed_file={empty}"], f"{empty} (method.data.seed_file)"),
        ("malformed suite file", 5, ["evaluation=mini", f"evaluation.mt_bench.questions={bad}"], str(bad)),
    ]


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="synpo-startup-"))
    env = {**os.environ, "SYNPO_HOME": str(tmp / "home")}
    failed = 0
    print(f"{'case':<24} {'seconds':>7} {'target':>6}  message")
    try:
        for what, target, overrides, expected in cases(tmp):
            start = time.perf_counter()
            result = subprocess.run(
                [SYNPO, *overrides, "logger=none"], cwd=tmp, env=env, capture_output=True, text=True, timeout=300
            )
            seconds = time.perf_counter() - start
            message = (result.stderr.strip().splitlines() or [""])[-1]
            ok = result.returncode != 0 and expected in result.stderr and seconds < target
            failed += not ok
            print(f"{what:<24} {seconds:>7.2f} {target:>6}  {'' if ok else 'FAILED '}{message[:110]}")
        if (tmp / "home" / "stages").exists():
            print("FAILED: a stage ran")
            failed += 1
    finally:
        shutil.rmtree(tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
