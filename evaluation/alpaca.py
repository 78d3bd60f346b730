"""AlpacaEval 2.0: the model's answers judged pairwise against the suite's baseline answers.

Everything that alpaca-eval 0.6.6 can do offline comes from it. The leaderboard's annotator is
`weighted_alpaca_eval_gpt4_turbo`; its `configs.yaml` in the installed package gives the judge prompt (its
`prompt_template`, filled by `make_prompts`, turned into messages by `prompt_to_chatml`), the decoding settings
(`completions_kwargs`: one token, `temperature` 1, `top_logprobs` 5, model `gpt-4-1106-preview`) and the parser
(`fn_completion_parser` = `logprob_parser` with its `completion_parser_kwargs`). The order of the two outputs is its
seeded `RandomSwitchTwoColumnsProcessor`, identical outputs are a tie (1.5) without a judge call (its rule), and the
raw win rate is `get_winrate` (ties count half).

Reading the verdict (`evaluation.alpaca_eval.verdict`, default the judge's `verdict`):
- `logprobs` (`evaluation=paper`'s, the leaderboard's): with an OpenAI-compatible judge, one completion per pair
  with the annotator's decoding settings, and its returned choice (`logprobs.content[0].top_logprobs`) goes through
  the annotator's parser, so the preference is weighted: 2 - P(m) / (P(m) + P(M)) in the order shown, then
  unswitched; neither token among the top log-probabilities = unparsable. A local judge reads its
  log-probabilities of "m" and "M" as the first answer token instead (`option_logprobs`), given to the same parser
  as a choice with those two top log-probabilities. The annotation's `raw_completion` is that choice, as
  alpaca-eval stores it.
- `generate`: the judge's text is parsed ("m" or "M" first, else unparsable).

Length-controlled win rate. `get_length_controlled_winrate` always starts with `_get_featurized_data`, which
downloads `df_gamed.csv` from the `tatsu-lab/alpaca_eval` dataset repo (`hf_hub_download`, whatever the GLM):
the per-instruction `instruction_difficulty` of the 805 real instructions and the annotations of two "gamed"
baselines, used by the leaderboard's GLM `length_controlled_v1` (difficulty term + regularisation towards those
rows). Neither exists for instructions written for a mini suite. So:
- `glm=length_controlled_v1` (the real benchmark) calls `get_length_controlled_winrate` itself; it works offline
  only once that file is in the hub cache.
- `glm=length_controlled_minimal` (alpaca-eval's own GLM without the difficulty term and without regularisation)
  repeats `_get_featurized_data`'s few feature lines without the download (the file only feeds columns this
  formula does not use) and fits with alpaca-eval's `make_dmatrix_for_model` and `fit_LogisticRegressionCV`; the
  tests check it equals `get_length_controlled_winrate(glm_name="length_controlled_minimal")` fed the same data.
  It is NOT the leaderboard's LC: on the leaderboard's own annotations it gives claude-2.1 32.41
  (published 25.25) and alpaca-7b 19.55 (published 5.88); see `OFFLINE_LC_NOTE`.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from synpo.config import ALPACA_GLMS
from synpo.errors import EvaluationError
from synpo.evaluation.common import ItemLog, load_rows

if TYPE_CHECKING:  # pandas loads with the scoring, not at start-up when the suite files are checked
    import pandas as pd

log = logging.getLogger(__name__)

# The seed of the order switch: `PairwiseAnnotator`'s default (0), which it passes to each single annotator and so
# to its processors (the single annotator's own default, 123, never applies). 0 reproduces the order of all 803
# judged rows of the leaderboard's claude-2.1 annotations; 123 gets half of them wrong.
SEED = 0
GLMS = ALPACA_GLMS
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"  # AlpacaEval 2's default annotator, the leaderboard's
# Printed wherever an offline LC is: measured by tests/test_benchmark_files.py on the leaderboard's annotations.
OFFLINE_LC_NOTE = (
    "glm=length_controlled_minimal is an offline stand-in, not the leaderboard's LC (length_controlled_v1 needs "
    "df_gamed.csv from the hub): on the leaderboard's own annotations it gives claude-2.1 32.41 "
    "(published 25.25) and alpaca-7b 19.55 (published 5.88)"
)


def _configs() -> Path:
    import alpaca_eval

    return Path(alpaca_eval.__file__).parent / "evaluators_configs"


def annotator_config() -> dict:
    """The leaderboard annotator's entry in alpaca-eval's installed `configs.yaml` (prompt, decoding, parser)."""
    import yaml

    path = _configs() / ANNOTATOR / "configs.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))[ANNOTATOR]


def _template() -> str:
    return (_configs() / annotator_config()["prompt_template"]).read_text(encoding="utf-8")


def weighted_parser_kwargs() -> dict:
    """`logprob_parser`'s settings in AE2's weighted annotator: numerator "m", denominators ["m", "M"]."""
    return annotator_config()["completion_parser_kwargs"]


def load_suite(data: str, limit: int | None = None) -> list[dict]:
    """AlpacaEval rows (`instruction`, baseline `output`, `generator`), each with its position as `index`."""
    if data == "hub":
        from alpaca_eval.constants import get_alpaca_eval_data

        rows = get_alpaca_eval_data().to_list()
    else:
        rows = load_rows(data, "evaluation.alpaca_eval.data", ("instruction", "output", "generator"))
    rows = [{**r, "index": i} for i, r in enumerate(rows)]
    return rows[:limit] if limit else rows


def judge_conversations(pairs: list[dict]) -> tuple[list[list[dict]], list[bool]]:
    """alpaca-eval's judge messages for rows with `instruction`, `output_1` (baseline), `output_2` (model).

    Returns the conversations and whether each pair was shown switched (model first)."""
    import pandas as pd
    from alpaca_eval.processors import RandomSwitchTwoColumnsProcessor
    from alpaca_eval.utils import make_prompts, prompt_to_chatml

    switch = RandomSwitchTwoColumnsProcessor(
        two_columns_to_switch=["output_1", "output_2"],
        random_seed_columns=["instruction"],
        _switch_column="is_switched_outputs",
        seed=SEED,
    )
    df = switch.preprocess(pd.DataFrame(pairs)[["instruction", "output_1", "output_2"]])
    prompts, _ = make_prompts(df, _template())
    return [prompt_to_chatml(p) for p in prompts], df["is_switched_outputs"].astype(bool).tolist()


def parse_preference(completion: str, switched: bool) -> float | None:
    """The template asks for the identifier alone: "m" (first output) or "M" (second). Returns alpaca-eval's
    preference (1 = baseline, 2 = model) in the unswitched order, None when the answer is neither."""
    match = re.match(r"""^[\s"'`*(]*([mM])(?![A-Za-z0-9])""", completion)
    if not match:
        return None
    shown = 1.0 if match.group(1) == "m" else 2.0
    return 3.0 - shown if switched else shown


def weighted_preference(choice: dict, switched: bool) -> float | None:
    """AE2's weighted preference from a chat-completion choice with `logprobs.content[0].top_logprobs`: the
    annotator's own parser on it, then unswitched; None when neither "m" nor "M" is among the top tokens."""
    from alpaca_eval import completion_parsers

    config = annotator_config()
    parser = getattr(completion_parsers, config["fn_completion_parser"])
    shown = float(parser(choice, **config["completion_parser_kwargs"])[0])
    if math.isnan(shown):
        return None
    return 3.0 - shown if switched else shown


def local_choice(logprobs: dict[str, float]) -> dict:
    """A local judge's log-probabilities of the answer tokens ({"m": .., "M": ..}) as the choice an endpoint returns
    (its most probable token written, those tokens as its top log-probabilities)."""
    token = max(logprobs, key=logprobs.get)
    top = [{"token": t, "logprob": v} for t, v in logprobs.items()]
    return {
        "message": {"role": "assistant", "content": token},
        "logprobs": {"content": [{"token": token, "logprob": logprobs[token], "top_logprobs": top}]},
    }


def is_same(output_1: str, output_2: str) -> bool:
    """alpaca-eval's tie rule: identical outputs get preference 1.5 and no judge call."""
    return output_1 == output_2


def length_controlled_winrate(annotations: pd.DataFrame, glm: str) -> dict:
    """LC win rate (%) and its standard error; see the module docstring for why the minimal GLM is refit here."""
    import pandas as pd
    from alpaca_eval.metrics.glm_winrate import (
        GLM_INFO,
        fit_LogisticRegressionCV,
        get_length_controlled_winrate,
        make_dmatrix_for_model,
    )

    if glm == "length_controlled_v1":
        m = get_length_controlled_winrate(annotations, glm_name=glm, save_weights_dir=None)
        return {
            "length_controlled_winrate": m["length_controlled_winrate"],
            "lc_standard_error": m["lc_standard_error"],
        }
    if glm != "length_controlled_minimal":
        raise EvaluationError(f"evaluation.alpaca_eval.glm={glm!r}: expected one of {list(GLMS)}")
    info = GLM_INFO[glm]
    df = annotations.reset_index()
    delta = df["output_1"].str.len() - df["output_2"].str.len()
    features = pd.DataFrame(
        {
            "preference": df["preference"].astype(float).replace({0.0: 1.5}) - 1,
            "std_delta_len": delta / delta.std(),
            "not_gamed_baseline": True,
        }
    )
    test = features[["not_gamed_baseline"]].copy()
    test["std_delta_len"] = 0
    train, x_test = make_dmatrix_for_model(features, test, formula=info["formula"])
    train = train[train["preference"].notna()]
    model = fit_LogisticRegressionCV(train, "preference", is_ytrue_proba=True, **info["kwargs"])
    predicted = pd.Series(model.predict_proba(x_test)[:, 1])
    return {"length_controlled_winrate": predicted.mean() * 100, "lc_standard_error": predicted.sem() * 100}


def win_rates(annotations: list[dict], glm: str) -> dict:
    """Raw and LC win rates over the parsed annotations; unparsable verdicts are counted, not scored."""
    import pandas as pd
    from alpaca_eval.metrics import get_winrate

    parsed = [a for a in annotations if a["preference"] is not None]
    out = {"n_annotations": len(annotations), "n_unparsable": len(annotations) - len(parsed)}
    if not parsed:
        return {**out, "win_rate": None, "length_controlled_winrate": None}
    df = pd.DataFrame(parsed)
    raw = {k: v.item() if hasattr(v, "item") else v for k, v in get_winrate(df).items()}
    # The GLM is cross-validated over 5 folds of instructions: fewer parsed verdicts cannot be fitted.
    lc = length_controlled_winrate(df, glm) if len(parsed) >= 5 else {"length_controlled_winrate": None}
    return {**out, **raw, **{k: None if v is None else float(v) for k, v in lc.items()}, "glm": glm}


def evaluate(ctx, cfg) -> dict:
    """Generate, judge (both resumable) and score one model on the AlpacaEval suite `cfg`."""
    import pandas as pd

    from synpo.generation import Sampling

    rows = load_suite(cfg.data, cfg.limit)
    sampling = Sampling(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=ctx.top_p, seed=ctx.seed)

    def answer(chunk: list[dict]) -> list[dict]:
        outs = ctx.generator().generate([[{"role": "user", "content": r["instruction"]}] for r in chunk], sampling)
        return [
            {"index": r["index"], "instruction": r["instruction"], "output": o[0], "generator": ctx.model_name}
            for r, o in zip(chunk, outs, strict=True)
        ]

    answers = ItemLog(ctx.work / "model_outputs.jsonl", "index").fill(rows, answer, ctx.chunk)
    pairs = [
        {
            "index": r["index"],
            "instruction": r["instruction"],
            "output_1": r["output"],
            "generator_1": r["generator"],
            "output_2": a["output"],
            "generator_2": ctx.model_name,
        }
        for r, a in zip(rows, answers, strict=True)
    ]

    verdict = cfg.verdict or ctx.judge_cfg.verdict

    def read(conversations: list[list[dict]]) -> list[dict | str]:
        """The judge's verdicts on `conversations`: choices with log-probabilities, or written texts."""
        if verdict != "logprobs":
            return ctx.judge().complete(conversations)
        if ctx.judge_cfg.backend == "openai":
            kwargs = annotator_config()["completions_kwargs"]
            return ctx.judge().complete_logprobs(
                conversations, kwargs["max_tokens"], kwargs["temperature"], kwargs["top_logprobs"]
            )
        options = weighted_parser_kwargs()["denominator_tokens"]
        rows = ctx.judge().option_logprobs(conversations, options)
        return [local_choice(dict(zip(options, row, strict=True))) for row in rows]

    def judge(chunk: list[dict]) -> list[dict]:
        same = [is_same(p["output_1"], p["output_2"]) for p in chunk]
        ask = [p for p, s in zip(chunk, same, strict=True) if not s]
        verdicts = iter(())
        if ask:
            conversations, switched = judge_conversations(ask)
            verdicts = iter(zip(read(conversations), switched, strict=True))
        out = []
        for p, s in zip(chunk, same, strict=True):
            if s:
                out.append({**p, "annotator": ctx.judge_name, "preference": 1.5, "raw_completion": None})
            else:
                raw, sw = next(verdicts)
                pref = parse_preference(raw, sw) if isinstance(raw, str) else weighted_preference(raw, sw)
                out.append(
                    {
                        **p,
                        "annotator": ctx.judge_name,
                        "preference": pref,
                        "raw_completion": raw,
                        "is_switched_outputs": sw,
                    }
                )
        return out

    annotations = ItemLog(ctx.work / "annotations.jsonl", "index").fill(pairs, judge, ctx.chunk)
    metrics = win_rates(annotations, cfg.glm)
    lengths = pd.Series([len(a["output"]) for a in answers])
    return {"metrics": {**metrics, "avg_length": float(lengths.mean())}, "generation": sampling, "n_items": len(rows)}
