"""MT-Bench: two-turn questions, single-answer grading 1-10 by a judge, turn 1 / turn 2 / average.

From fschat 0.2.36's `fastchat/llm_judge` (prompts from `data/judge_prompts.jsonl`, rules from `common.py`,
`gen_model_answer.py`, `show_result.py`), reproduced because its wheel ships neither the questions nor these
files: per-category sampling temperatures, the second question asked after the model's own first answer,
`single-v1` / `single-v1-multi-turn` prompts and their reference-guided `single-math-v1*` versions for
math / reasoning / coding, "[[rating]]" parsed with "[rating]" as fallback, unparsable = -1 and left out of
the means (counted here).

With `verdict=logprobs` (`evaluation.mt_bench.verdict`, default the judge's; a local judge only) the judge writes
no explanation: its answer is started with "Rating: [[" (the prompt's own example) and the rating is the one of
1..10 whose tokens, closed by "]]", are the most probable.
"""

from __future__ import annotations

import ast
import re
import uuid
from collections import defaultdict

from synpo.errors import EvaluationError
from synpo.evaluation.common import ItemLog, load_rows
from synpo.judges import best

TEMPERATURE = {
    "writing": 0.7,
    "roleplay": 0.7,
    "extraction": 0.0,
    "math": 0.0,
    "coding": 0.0,
    "reasoning": 0.0,
    "stem": 0.1,
    "humanities": 0.1,
}
DEFAULT_TEMPERATURE = 0.7  # gen_model_answer's fallback for a category not in the table
NEED_REF_CATS = ("math", "reasoning", "coding")

_RATE = (
    "After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this "
    'format: "[[rating]]", for example: "Rating: [[5]]".'
)
PROMPTS = {
    "single-v1": (
        "You are a helpful assistant.",
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
        "assistant to the user question displayed below. Your evaluation should consider factors such as the "
        "helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your "
        f"evaluation by providing a short explanation. Be as objective as possible. {_RATE}\n\n[Question]\n"
        "{question}\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]",
    ),
    "single-math-v1": (
        "You are a helpful assistant.",
        "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI "
        "assistant to the user question displayed below. Your evaluation should consider correctness and "
        "helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation by "
        "comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as "
        f"objective as possible. {_RATE}\n\n[Question]\n{{question}}\n\n[The Start of Reference Answer]\n"
        "{ref_answer_1}\n[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\n{answer}\n"
        "[The End of Assistant's Answer]",
    ),
    "single-v1-multi-turn": (
        "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the "
        "user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, "
        "accuracy, depth, creativity, and level of detail of the response. You evaluation should focus on the "
        "assistant's answer to the second user question. Begin your evaluation by providing a short explanation. Be "
        f"as objective as possible. {_RATE}\n\n",
        "<|The Start of Assistant A's Conversation with User|>\n\n### User:\n{question_1}\n\n### Assistant A:\n"
        "{answer_1}\n\n### User:\n{question_2}\n\n### Assistant A:\n{answer_2}\n\n"
        "<|The End of Assistant A's Conversation with User|>",
    ),
    "single-math-v1-multi-turn": (
        "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the "
        "user question. Your evaluation should consider correctness and helpfulness. You will be given a reference "
        "answer and the assistant's answer. You evaluation should focus on the assistant's answer to the second "
        "question. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and "
        f"correct any mistakes. Be as objective as possible. {_RATE}\n\n",
        "<|The Start of Reference Answer|>\n\n### User:\n{question_1}\n\n### Reference answer:\n{ref_answer_1}\n\n"
        "### User:\n{question_2}\n\n### Reference answer:\n{ref_answer_2}\n\n<|The End of Reference Answer|>\n\n\n"
        "<|The Start of Assistant A's Conversation with User|>\n\n### User:\n{question_1}\n\n### Assistant A:\n"
        "{answer_1}\n\n### User:\n{question_2}\n\n### Assistant A:\n{answer_2}\n\n"
        "<|The End of Assistant A's Conversation with User|>",
    ),
}
RATINGS = [str(r) for r in range(1, 11)]
ONE_SCORE = re.compile(r"\[\[(\d+\.?\d*)\]\]")
ONE_SCORE_BACKUP = re.compile(r"\[(\d+\.?\d*)\]")


def parse_rating(judgment: str) -> float:
    """fschat's single-answer rating: "[[x]]", else "[x]"; -1 when neither is there."""
    match = ONE_SCORE.search(judgment) or ONE_SCORE_BACKUP.search(judgment)
    return float(ast.literal_eval(match.group(1))) if match else -1.0


def judge_conversation(question: dict, answers: list[str], turn: int) -> tuple[str, list[dict]]:
    """(prompt name, judge messages) for grading `turn` (1 or 2) of one answered question."""
    ref = question["category"] in NEED_REF_CATS
    name = ("single-math-v1" if ref else "single-v1") + ("-multi-turn" if turn == 2 else "")
    system, template = PROMPTS[name]
    q, r = question["turns"], question.get("reference") or []
    if turn == 1:
        user = template.format(question=q[0], answer=answers[0], ref_answer_1=r[0] if ref else "")
    else:
        kwargs = {"ref_answer_1": r[0], "ref_answer_2": r[1]} if ref else {}
        user = template.format(question_1=q[0], question_2=q[1], answer_1=answers[0], answer_2=answers[1], **kwargs)
    return name, [{"role": "system", "content": system}, {"role": "user", "content": user}]


def summarize(judgments: list[dict], categories: dict[str, str]) -> dict:
    """Turn 1, turn 2 and overall means over the valid ratings (fschat's show_result), plus per category."""
    valid = [j for j in judgments if j["score"] != -1]
    by_turn, by_cat = defaultdict(list), defaultdict(list)
    for j in valid:
        by_turn[j["turn"]].append(j["score"])
        by_cat[categories[str(j["question_id"])]].append(j["score"])

    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    return {
        "turn_1": mean(by_turn[1]),
        "turn_2": mean(by_turn[2]),
        "average": mean([j["score"] for j in valid]),
        "by_category": {c: mean(s) for c, s in sorted(by_cat.items())},
        "n_judgments": len(judgments),
        "n_unparsable": len(judgments) - len(valid),
    }


def load_questions(cfg) -> list[dict]:
    """The questions, with `reference` taken from `cfg.reference_answers` when given (fschat keeps them apart)."""
    questions = load_rows(cfg.questions, "evaluation.mt_bench.questions", ("question_id", "category", "turns"))
    if cfg.reference_answers:
        refs = load_rows(cfg.reference_answers, "evaluation.mt_bench.reference_answers", ("question_id", "choices"))
        turns = {r["question_id"]: r["choices"][0]["turns"] for r in refs}
        questions = [{**q, "reference": turns.get(q["question_id"], q.get("reference"))} for q in questions]
    validate(questions)
    return questions[: cfg.limit] if cfg.limit else questions


def validate(questions: list[dict]) -> None:
    for q in questions:
        if len(q["turns"]) != 2:
            raise EvaluationError(f"evaluation.mt_bench.questions: question {q['question_id']} needs 2 turns")
        if q["category"] in NEED_REF_CATS and len(q.get("reference") or []) != 2:
            raise EvaluationError(
                f"evaluation.mt_bench.questions: {q['category']} question {q['question_id']} needs a 2-turn reference"
            )


def evaluate(ctx, cfg) -> dict:
    from synpo.generation import Sampling

    questions = load_questions(cfg)

    def sampling(category: str) -> Sampling:
        temperature = TEMPERATURE.get(category, DEFAULT_TEMPERATURE)
        return Sampling(max_new_tokens=cfg.max_new_tokens, temperature=temperature, top_p=ctx.top_p, seed=ctx.seed)

    def answer(chunk: list[dict]) -> list[dict]:
        turns: dict[str, list[str]] = {str(q["question_id"]): [] for q in chunk}
        for turn in (0, 1):
            by_temp = defaultdict(list)
            for q in chunk:
                by_temp[TEMPERATURE.get(q["category"], DEFAULT_TEMPERATURE)].append(q)
            for group in by_temp.values():
                convs = []
                for q in group:
                    conv = []
                    for k in range(turn + 1):
                        conv.append({"role": "user", "content": q["turns"][k]})
                        if k < turn:
                            conv.append({"role": "assistant", "content": turns[str(q["question_id"])][k]})
                    convs.append(conv)
                for q, out in zip(group, ctx.generator().generate(convs, sampling(group[0]["category"])), strict=True):
                    turns[str(q["question_id"])].append(out[0])
        return [
            {
                "question_id": q["question_id"],
                "answer_id": uuid.uuid4().hex,
                "model_id": ctx.model_name,
                "choices": [{"index": 0, "turns": turns[str(q["question_id"])]}],
            }
            for q in chunk
        ]

    answers = ItemLog(ctx.work / "model_answer.jsonl", "question_id").fill(questions, answer, ctx.chunk)
    items = [
        {"key": f"{q['question_id']}:{turn}", "question": q, "answers": a["choices"][0]["turns"], "turn": turn}
        for q, a in zip(questions, answers, strict=True)
        for turn in (1, 2)
    ]

    verdict = cfg.verdict or ctx.judge_cfg.verdict

    def judge(chunk: list[dict]) -> list[dict]:
        built = [judge_conversation(it["question"], it["answers"], it["turn"]) for it in chunk]
        if verdict == "logprobs":
            rows = ctx.judge().option_logprobs([conv for _, conv in built], RATINGS, "Rating: [[", "]]")
            texts = [f"Rating: [[{RATINGS[best(row)]}]]" for row in rows]
            extra = [{"logprobs": dict(zip(RATINGS, row, strict=True))} for row in rows]
        else:
            texts, extra = ctx.judge().complete([conv for _, conv in built]), [{}] * len(built)
        return [
            {
                "key": it["key"],
                "question_id": it["question"]["question_id"],
                "turn": it["turn"],
                "judge": [ctx.judge_name, name],
                "user_prompt": conv[1]["content"],
                "judgment": text,
                "score": parse_rating(text),
                **more,
            }
            for it, (name, conv), text, more in zip(chunk, built, texts, extra, strict=True)
        ]

    judgments = ItemLog(ctx.work / "model_judgment.jsonl", "key").fill(items, judge, ctx.chunk)
    metrics = summarize(judgments, {str(q["question_id"]): q["category"] for q in questions})
    temps = {c: TEMPERATURE.get(c, DEFAULT_TEMPERATURE) for c in sorted({q["category"] for q in questions})}
    generation = {"max_new_tokens": cfg.max_new_tokens, "top_p": ctx.top_p, "seed": ctx.seed, "temperature": temps}
    return {"metrics": metrics, "generation": generation, "n_items": len(questions)}
