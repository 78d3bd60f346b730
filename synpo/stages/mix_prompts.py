"""Each iteration, for `method.prompt_source=mix`: equal shares of several sources' prompts (Table 6's mixed row).

Each source's prompts are taken in their own order (the first `n / k` of each of the k sources; a source with fewer
gives all it has) and the mix is shuffled with the iteration's seed, so no source comes first in a run cut short."""

from __future__ import annotations

import random
from pathlib import Path

from synpo.io import read_jsonl, write_jsonl


def run(out: Path, config: dict, **sources: Path) -> dict:
    parts, n = config["parts"], config["n"]
    mixed, counts = [], {}
    for i, (name, (file, limit)) in enumerate(parts.items()):
        share = n // len(parts) + (i < n % len(parts))
        rows = read_jsonl(sources[name] / file, ("id", "prompt"))[: limit or None][:share]
        mixed += [{"id": r["id"], "prompt": r["prompt"], "source": name} for r in rows]
        counts[f"from_{name}"] = len(rows)
    random.Random(config["seed"]).shuffle(mixed)
    write_jsonl(out / "prompts.jsonl", mixed)
    return {"prompts": len(mixed), **counts}
