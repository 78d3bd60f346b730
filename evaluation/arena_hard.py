"""Arena-Hard v0.1: the model against a baseline's answers, judged in both orders, scored by a Bradley-Terry fit.

arena-hard-auto is not on the package index, so its v0.1 pieces are reproduced here from its repository
(`config/judge_config.yaml`, `gen_judgment.py`, `show_result.py` of the v0.1 releases): the judge system prompt
and user template, the verdict regex and its "no verdict -> ask to continue" second attempt, game 1 with the
baseline as assistant A and game 2 swapped, strong verdicts counted `weight` (3) times, unknown verdicts dropped,
the Bradley-Terry fit as an unpenalised logistic regression on duplicated battles (ties = one win each way),
ratings anchored at the baseline = 1000, and a bootstrap over battles whose 2.5 / 97.5 percentiles give the CI.

With `verdict=logprobs` (`evaluation.arena_hard.verdict`, default the judge's; a local judge only) the judge writes no
judgment: its answer is started with "[[" and the verdict is the label of `LABELS` whose tokens, closed by "]]", are
the most probable; no second attempt is needed.

Files. Questions and the baseline's answers are read in either of arena-hard-auto's formats, whichever a file is in
(judged by its first record):
- today's (the repository since 2025): questions `{uid, category, cluster, prompt}`; answers
  `{uid, ans_id, model, messages: [{role: user, content}, {role: assistant, content: {answer}}]}`;
- the v0.1 releases': questions `{question_id, category, cluster, turns: [{content}]}`; answers
  `{question_id, answer_id, model_id, choices: [{index, turns: [{content}]}]}`.
What this suite writes is in today's format: `model_answer.jsonl` as the answers above, and `model_judgment.jsonl`
with one row per question `{uid, category, model, baseline, judge, games}`, `games` being game 1 (baseline as
assistant A) and game 2 (swapped), each `{user_prompt, judgment, score}` (+ `logprobs` of each label with
`verdict=logprobs`).
"""

from __future__ import annotations

import math
import re
import uuid
from typing import TYPE_CHECKING

from synpo.errors import EvaluationError
from synpo.evaluation.common import ItemLog, load_rows
from synpo.judges import best

if TYPE_CHECKING:  # pandas loads with the scoring, not at start-up when the suite files are checked
    import pandas as pd

SYSTEM_PROMPT = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to the "
    "user prompt displayed below. You will be given assistant A's answer and assistant B's answer. Your job is to "
    "evaluate which assistant's answer is better.\n\nBegin your evaluation by generating your own answer to the "
    "prompt. You must provide your answers before judging any answers.\n\nWhen evaluating the assistants' answers, "
    "compare both assistants' answers with your answer. You must identify and correct any mistakes or inaccurate "
    "information.\n\nThen consider if the assistant's answers are helpful, relevant, and concise. Helpful means the "
    "answer correctly responds to the prompt or follows the instructions. Note when user prompt has any ambiguity or "
    "more than one interpretation, it is more helpful and appropriate to ask for clarifications or more information "
    "from the user than providing an answer based on assumptions. Relevant means all parts of the response closely "
    "connect or are appropriate to what is being asked. Concise means the response is clear and not verbose or "
    "excessive.\n\nThen consider the creativity and novelty of the assistant's answers when needed. Finally, identify "
    "any missing important information in the assistants' answers that would be beneficial to include when "
    "responding to the user prompt.\n\nAfter providing your explanation, you must output only one of the following "
    "choices as your final verdict with a label:\n\n1. Assistant A is significantly better: [[A>>B]]\n2. Assistant A "
    "is slightly better: [[A>B]]\n3. Tie, relatively the same: [[A=B]]\n4. Assistant B is slightly better: [[B>A]]\n"
    '5. Assistant B is significantly better: [[B>>A]]\n\nExample output: "My final verdict is tie: [[A=B]]".'
)
PROMPT_TEMPLATE = (
    "<|User Prompt|>\n{question_1}\n\n<|The Start of Assistant A's Answer|>\n{answer_1}\n"
    "<|The End of Assistant A's Answer|>\n\n<|The Start of Assistant B's Answer|>\n{answer_2}\n"
    "<|The End of Assistant B's Answer|>"
)
CONTINUE = "continue your judgment and finish by outputting a final verdict label"
VERDICT = re.compile(r"\[\[([AB<>=]+)\]\]")
# Verdict -> winner of the game when A is the first-named model; anything else is dropped (weight 0).
WINNER = {"A=B": "tie", "A>B": "a", "A>>B": "a", "B>A": "b", "B>>A": "b"}
LABELS = ["A>>B", "A>B", "A=B", "B>A", "B>>A"]


def _format(rows: list[dict], key: str, spec: str, today: tuple[str, ...], old: tuple[str, ...]) -> str:
    """`today` or `old`, from the fields of the first record; every record must then carry that format's fields."""
    if not rows:
        raise EvaluationError(f"{key}={spec!r}: the file has no records")
    fmt, fields = ("today", today) if "uid" in rows[0] else ("old", old)
    for i, row in enumerate(rows):
        missing = [f for f in fields if f not in row]
        if missing:
            raise EvaluationError(
                f"{key}={spec!r}: record {i} lacks {missing} (expected arena-hard-auto's questions / answers with "
                f"{list(today)} or, in the v0.1 releases' format, {list(old)})"
            )
    return fmt


def load_questions(spec: str, limit: int | None = None) -> list[dict]:
    """Arena-Hard questions in either format, as `{uid, category, prompt}`."""
    key = "evaluation.arena_hard.questions"
    rows = load_rows(spec, key, ())
    if _format(rows, key, spec, ("uid", "prompt"), ("question_id", "turns")) == "today":
        out = [{"uid": str(r["uid"]), "category": r.get("category"), "prompt": r["prompt"]} for r in rows]
    else:
        out = [
            {"uid": str(r["question_id"]), "category": r.get("category"), "prompt": r["turns"][0]["content"]}
            for r in rows
        ]
    return out[:limit] if limit else out


def answer_text(row: dict) -> str:
    """The answer of one answer record in either format (today's keeps it under the assistant's `content.answer`)."""
    if "messages" in row:
        content = row["messages"][-1]["content"]
        return content["answer"] if isinstance(content, dict) else content
    return row["choices"][0]["turns"][0]["content"]


def load_answers(spec: str, questions: list[dict]) -> tuple[str, dict[str, str]]:
    """(model name, {uid: answer}) of an answer file in either format; every question must have an answer."""
    key = "evaluation.arena_hard.baseline_answers"
    rows = load_rows(spec, key, ())
    if _format(rows, key, spec, ("uid", "model", "messages"), ("question_id", "model_id", "choices")) == "today":
        model, answers = rows[0]["model"], {str(r["uid"]): answer_text(r) for r in rows}
    else:
        model, answers = rows[0]["model_id"], {str(r["question_id"]): answer_text(r) for r in rows}
    missing = [q["uid"] for q in questions if q["uid"] not in answers]
    if missing:
        raise EvaluationError(f"{key}={spec!r}: no answer for {len(missing)} questions, e.g. {missing[:3]}")
    return model, answers


def parse_verdict(judgment: str) -> tuple[str | None, bool]:
    """arena-hard's `get_score`: (label, try_again). No label -> try again; conflicting labels -> give up."""
    matches = {m for m in VERDICT.findall(judgment) if m}
    if not matches:
        return None, True
    if len(matches) == 1:
        return matches.pop().strip("\n"), False
    return None, False


def get_battles(judgments: list[dict], baseline: str, weight: int = 3) -> pd.DataFrame:
    """One battle row per (weighted) game outcome, as `get_battles_from_judgment` builds them."""
    import pandas as pd

    rows = []
    for j in judgments:
        for game, swapped in zip(j["games"], (False, True), strict=True):
            winner = WINNER.get(game["score"])
            if winner is None:
                continue
            if winner != "tie":
                model_won = (winner == "b") != swapped  # game 1: A = baseline; game 2: A = model
                winner = "model_b" if model_won else "model_a"
            n = weight if ">>" in game["score"] else 1
            rows += [{"uid": j["uid"], "model_a": baseline, "model_b": j["model"], "winner": winner}] * n
    return pd.DataFrame(rows, columns=["uid", "model_a", "model_b", "winner"])


def compute_mle_elo(df: pd.DataFrame, baseline: str, scale=400, base=10, init_rating=1000) -> pd.Series:
    """Bradley-Terry ratings by logistic regression, as arena-hard's `compute_mle_elo`."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    models = pd.Series(np.arange(len(models)), index=models)
    df = pd.concat([df, df], ignore_index=True)
    n = len(df)
    x = np.zeros([n, len(models)])
    x[np.arange(n), models[df["model_a"]].to_numpy()] = +math.log(base)
    x[np.arange(n), models[df["model_b"]].to_numpy()] = -math.log(base)
    y = np.zeros(n)
    y[(df["winner"] == "model_a").to_numpy()] = 1.0
    tie = np.array(df["winner"] == "tie")
    tie[n // 2 :] = False
    y[tie] = 1.0
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8)
    lr.fit(x, y)
    elo = scale * lr.coef_[0] + init_rating
    if baseline in models.index:
        elo += init_rating - elo[models[baseline]]
    return pd.Series(elo, index=models.index)


def win_rate(elo_model: float, elo_baseline: float, scale=400, base=10) -> float:
    return 100 / (1 + base ** ((elo_baseline - elo_model) / scale))


def bt_win_rate(battles: pd.DataFrame, model: str, baseline: str, rounds: int = 100, seed: int = 42) -> dict:
    """Win rate (%) vs the baseline from the BT fit, with the bootstrap's 95% interval."""
    import numpy as np

    elo = compute_mle_elo(battles, baseline)
    rng = np.random.RandomState(seed)
    boot = [
        compute_mle_elo(battles.sample(frac=1.0, replace=True, random_state=rng), baseline)[model]
        for _ in range(rounds)
    ]
    lower, upper = np.percentile(boot, 2.5), np.percentile(boot, 97.5)
    return {
        "win_rate": win_rate(elo[model], elo[baseline]),
        "ci_lower": win_rate(lower, elo[baseline]),
        "ci_upper": win_rate(upper, elo[baseline]),
        "bootstrap_rounds": rounds,
    }


def judge_games(ctx, pairs: list[dict], attempts: int, verdict: str, baseline: str) -> list[dict]:
    """Both games of each (question, baseline answer, model answer), with arena-hard's retry for a missing label."""
    convs, games = [], []
    for p in pairs:
        for a1, a2 in ((p["baseline"], p["answer"]), (p["answer"], p["baseline"])):
            user = PROMPT_TEMPLATE.format(question_1=p["question"], answer_1=a1, answer_2=a2)
            convs.append([{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}])
            games.append({"user_prompt": user, "judgment": "", "score": None})
    logprobs = verdict == "logprobs"
    if logprobs:
        for game, row in zip(games, ctx.judge().option_logprobs(convs, LABELS, prefill="[[", suffix="]]"), strict=True):
            label = LABELS[best(row)]
            game.update(judgment=f"[[{label}]]", score=label, logprobs=dict(zip(LABELS, row, strict=True)))
    pending = [] if logprobs else list(range(len(convs)))
    for attempt in range(attempts):
        if not pending:
            break
        if attempt:
            for i in pending:
                convs[i].append({"role": "user", "content": CONTINUE})
        for i, text in zip(pending, ctx.judge().complete([convs[i] for i in pending]), strict=True):
            games[i]["judgment"] += "\n" + text
            convs[i].append({"role": "assistant", "content": text})
            games[i]["score"], games[i]["try_again"] = parse_verdict(games[i]["judgment"])
        pending = [i for i in pending if games[i]["try_again"]]
    for g in games:
        g.pop("try_again", None)
    return [
        {
            "uid": p["uid"],
            "category": p["category"],
            "model": ctx.model_name,
            "baseline": baseline,
            "judge": ctx.judge_name,
            "games": games[2 * k : 2 * k + 2],
        }
        for k, p in enumerate(pairs)
    ]


def evaluate(ctx, cfg) -> dict:
    from synpo.generation import Sampling

    questions = load_questions(cfg.questions, cfg.limit)
    baseline, baseline_answers = load_answers(cfg.baseline_answers, questions)
    sampling = Sampling(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=ctx.top_p, seed=ctx.seed)

    def answer(chunk):
        outs = ctx.generator().generate([[{"role": "user", "content": q["prompt"]}] for q in chunk], sampling)
        return [
            {
                "uid": q["uid"],
                "ans_id": uuid.uuid4().hex,
                "model": ctx.model_name,
                "messages": [
                    {"role": "user", "content": q["prompt"]},
                    {"role": "assistant", "content": {"answer": o[0]}},
                ],
            }
            for q, o in zip(chunk, outs, strict=True)
        ]

    answers = ItemLog(ctx.work / "model_answer.jsonl", "uid").fill(questions, answer, ctx.chunk)
    pairs = [
        {
            "uid": q["uid"],
            "category": q["category"],
            "question": q["prompt"],
            "baseline": baseline_answers[q["uid"]],
            "answer": answer_text(a),
        }
        for q, a in zip(questions, answers, strict=True)
    ]
    verdict = cfg.verdict or ctx.judge_cfg.verdict
    judgments = ItemLog(ctx.work / "model_judgment.jsonl", "uid").fill(
        pairs, lambda chunk: judge_games(ctx, chunk, cfg.judgment_attempts, verdict, baseline), ctx.chunk
    )
    n_games = 2 * len(judgments)
    n_unparsable = sum(g["score"] not in WINNER for j in judgments for g in j["games"])
    battles = get_battles(judgments, baseline, cfg.strong_weight)
    metrics = {"n_games": n_games, "n_unparsable": n_unparsable, "n_battles": len(battles), "baseline": baseline}
    if battles.empty:
        metrics.update(win_rate=None, ci_lower=None, ci_upper=None)
    else:
        metrics.update(bt_win_rate(battles, ctx.model_name, baseline, cfg.bootstrap_rounds, ctx.seed))
    return {"metrics": metrics, "generation": sampling, "n_items": len(questions)}
