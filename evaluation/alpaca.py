"""AlpacaEval 2.0: the model's answers judged pairwise against the suite's baseline answers.

Everything that alpaca-eval 0.6.6 can do offline comes from it: the judge prompt is its AE2 annotator's template
(`alpaca_eval_clf_gpt4_turbo`, read from the installed package, filled by `make_prompts`, turned into messages by
`prompt_to_chatml`), the order of the two outputs is its seeded `RandomSwitchTwoColumnsProcessor`, identical
outputs are a tie without a judge call (its rule), and the raw win rate is `get_winrate` (ties count half).

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

Reading the verdict. With `judge.verdict=generate` the judge's text is parsed ("m" or "M" first, else unparsable).
With `judge.verdict=logprobs` the judge writes nothing: its log-probabilities of "m" and "M" as the first tokens of
its answer go through alpaca-eval's own `logprob_parser` with the settings of AE2's default annotator
(`weighted_alpaca_eval_gpt4_turbo`, which reads GPT-4 Turbo's top log-probabilities of these two tokens the same
way), so the preference is weighted: 1 + P(M) / (P(m) + P(M)) in the order shown.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from evaluation.common import ItemLog, load_rows
from synpo.config import ALPACA_GLMS
from synpo.errors import EvaluationError

if TYPE_CHECKING:  # pandas loads with the scoring, not at start-up when the suite files are checked
    import pandas as pd

log = logging.getLogger(__name__)

SEED = 123  # alpaca-eval's default processor seed
GLMS = ALPACA_GLMS


def _configs() -> Path:
    import alpaca_eval

    return Path(alpaca_eval.__file__).parent / "evaluators_configs"


def _template() -> str:
    return (_configs() / "alpaca_eval_clf_gpt4_turbo" / "alpaca_eval_clf.txt").read_text(encoding="utf-8")


def weighted_parser_kwargs() -> dict:
    """`logprob_parser`'s settings in AE2's weighted annotator: numerator "m", denominators ["m", "M"]."""
    import yaml

    path = _configs() / "weighted_alpaca_eval_gpt4_turbo" / "configs.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))["weighted_alpaca_eval_gpt4_turbo"]
    return config["completion_parser_kwargs"]


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


def weighted_preference(logprobs: dict[str, float], switched: bool) -> float:
    """AE2's weighted preference from the judge's log-probabilities of its first answer token ({"m": .., "M": ..}):
    `logprob_parser` on them as if they were the top log-probabilities of an OpenAI completion, then unswitched."""
    from alpaca_eval.completion_parsers import logprob_parser

    top = [{"token": token, "logprob": value} for token, value in logprobs.items()]
    completion = {"logprobs": {"content": [{"top_logprobs": top}]}}
    shown = float(logprob_parser(completion, **weighted_parser_kwargs())[0])
    return 3.0 - shown if switched else shown


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

    def judge(chunk: list[dict]) -> list[dict]:
        same = [p["output_1"].strip() == p["output_2"].strip() for p in chunk]
        ask = [p for p, s in zip(chunk, same, strict=True) if not s]
        verdicts = iter(())
        if ask:
            conversations, switched = judge_conversations(ask)
            if ctx.judge_cfg.verdict == "logprobs":
                options = weighted_parser_kwargs()["denominator_tokens"]
                logprobs = [
                    dict(zip(options, row, strict=True)) for row in ctx.judge().option_logprobs(conversations, options)
                ]
                completions = [max(lp, key=lp.get) for lp in logprobs]
            else:
                completions, logprobs = ctx.judge().complete(conversations), [None] * len(conversations)
            verdicts = iter(zip(completions, logprobs, switched, strict=True))
        out = []
        for p, s in zip(chunk, same, strict=True):
            if s:
                out.append({**p, "annotator": ctx.judge_name, "preference": 1.5, "raw_completion": None})
            else:
                text, lp, sw = next(verdicts)
                pref = parse_preference(text, sw) if lp is None else weighted_preference(lp, sw)
                row = {**p, "annotator": ctx.judge_name, "preference": pref, "raw_completion": text}
                out.append({**row, "is_switched_outputs": sw, **({"logprobs": lp} if lp else {})})
        return out

    annotations = ItemLog(ctx.work / "annotations.jsonl", "index").fill(pairs, judge, ctx.chunk)
    metrics = win_rates(annotations, cfg.glm)
    lengths = pd.Series([len(a["output"]) for a in answers])
    return {"metrics": {**metrics, "avg_length": float(lengths.mean())}, "generation": sampling, "n_items": len(rows)}
