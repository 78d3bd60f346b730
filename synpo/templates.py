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
