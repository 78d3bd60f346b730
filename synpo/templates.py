"""The paper's prompt templates (Figures 3 and 7) and parsing of the generator's output."""

from __future__ import annotations

import re

QUESTION_HEADER = "== GENERATED QUESTION & CORRECT SOLUTION =="

# Paper Figure 3, the self-prompt generator's template.
QUESTION_TEMPLATE = """## Background
You are an expert in designing questions and instructions. Design ONE question or instruction, with its \
correct solution, that uses the given keywords.

### Requirements
1. Try to contain the given keywords in the question or instruction.
2. The solution must be correct, with detailed reasoning and dense knowledge.

## Given Keywords
{keywords}

## Output Format
{header}
<question> ... </question>
<solution> ... </solution>

## Output
{header}"""

# Paper Figure 7, the response improver's template.
IMPROVER_TEMPLATE = """You are a smart AI assistant. For a given question-answer pair, improve the answer by \
correcting errors, bolstering informativeness, aligning with the question, and providing comprehensive detail.

Given Question: {question}

Original Answer: {answer}

Rewritten Answer:"""

QUESTION_START = "<question>"
QUESTION_STOP = "</question>"


def question_prompt(keywords: list[str]) -> str:
    return QUESTION_TEMPLATE.format(keywords=", ".join(keywords), header=QUESTION_HEADER)


def question_target(question: str, solution: str) -> str:
    return f"<question> {question.strip()} </question>\n<solution> {solution.strip()} </solution>"


def improver_prompt(question: str, answer: str) -> str:
    return IMPROVER_TEMPLATE.format(question=question.strip(), answer=answer.strip())


def chat(user: str, system_prompt: str | None = None) -> list[dict]:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return messages + [{"role": "user", "content": user}]


def cut_prompt(tokenizer, text: str, max_tokens: int) -> str:
    """The prompt's last `max_tokens` tokens (the papers' max prompt length; the question usually ends a prompt)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else tokenizer.decode(ids[-max_tokens:])


_QUESTION = re.compile(r"<question>(.*?)(?:</question>|$)", re.S)


def parse_question(text: str) -> tuple[str | None, str]:
    """Extract the question from the generator's output; returns (question, reason it was rejected)."""
    m = _QUESTION.search(text)
    if not m:
        return None, "no_question_tag"
    question = m.group(1).strip()
    if not question:
        return None, "empty_question"
    if QUESTION_HEADER in question or "## Given Keywords" in question or "<solution>" in question:
        return None, "copies_template"
    return question, "ok"


# Self-Instruct (Wang et al. 2023): the model continues a numbered list of example tasks with one new task.
SELF_INSTRUCT_HEADER = "Come up with a series of tasks:"


def self_instruct_prompt(examples: list[str]) -> tuple[str, str]:
    """The request with numbered example tasks, and the prefill that starts the next task's number."""
    tasks = "\n".join(f"Task {i}: {' '.join(q.split())}" for i, q in enumerate(examples, 1))
    return f"{SELF_INSTRUCT_HEADER}\n\n{tasks}", f"Task {len(examples) + 1}:"


def parse_self_instruct(text: str, prefill: str) -> tuple[str | None, str]:
    """The new task after the prefill, up to the next numbered task; returns (task, reason it was rejected)."""
    task = text.removeprefix(prefill)
    task = re.split(r"\n\s*Task \d+\s*:", task, maxsplit=1)[0].strip()
    if not task:
        return None, "empty_task"
    if SELF_INSTRUCT_HEADER in task:
        return None, "copies_template"
    return task, "ok"


# Self-Rewarding (Yuan et al. 2024, Figure 2): the model judges a response with additive 5-point scoring.
ADDITIVE_JUDGE_TEMPLATE = """Review the user's question and the corresponding response using the additive 5-point \
scoring system described below. Points are accumulated based on the satisfaction of each criterion:
- Add 1 point if the response is relevant and provides some information related to the user's inquiry, even if it \
is incomplete or contains some irrelevant content.
- Add another point if the response addresses a substantial portion of the user's question, but does not \
completely resolve the query or provide a direct answer.
- Award a third point if the response answers the basic elements of the user's question in a useful way, \
regardless of whether it seems to have been written by an AI Assistant or if it has elements typically found in \
blogs or search results.
- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, addressing the \
user's question directly and comprehensively, and is well-organized and helpful, even if there is slight room for \
improvement in clarity, conciseness or focus.
- Bestow a fifth point for a response that is impeccably tailored to the user's question by an AI Assistant, \
without extraneous information, reflecting expert knowledge, and demonstrating a high-quality, engaging, and \
insightful answer.

User: {question}
<response>{response}</response>

After examining the user's instruction and the response:
- Briefly justify your total score, up to 100 words.
- Conclude with the score using the format: "Score: <total points>"

Remember to assess from the AI Assistant perspective, utilizing web search knowledge as necessary. To evaluate the \
response in alignment with this additive scoring model, we'll systematically attribute points based on the \
outlined criteria."""

MAX_ADDITIVE_SCORE = 5
_SCORE = re.compile(r"Score:\s*\**\s*(\d+(?:\.\d+)?)")


def additive_judge_prompt(question: str, response: str) -> str:
    return ADDITIVE_JUDGE_TEMPLATE.format(question=question.strip(), response=response.strip())


def parse_additive_score(text: str) -> float | None:
    """The points of the last "Score: N" in a judgment; None when there is none or N is not in 0..5."""
    found = _SCORE.findall(text)
    if not found:
        return None
    score = float(found[-1])
    return score if 0 <= score <= MAX_ADDITIVE_SCORE else None
