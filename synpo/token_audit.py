"""Start-up audit: one conversation, one token sequence, through every tokenization the run uses.

The same conversation is tokenized by the TRL trainers (SFT, SimPO through CPOTrainer, DPO), by the generator
(`chat_prompt_ids`, shared by the hf and vllm backends), by the reward model or judge and by lm-eval. A probe
conversation (the model's system prompt, a user turn, an assistant answer) goes through each component's own code
path, with tokenizers only (no weights), and these are checked:

- the prompt ids the generator feeds the model are the trainer's prompt part;
- no sequence starts with a duplicated BOS (a template that writes BOS and a tokenizer call that adds one);
- the training labels are the template's assistant turn: the answer, its end-of-turn token exactly once, which must
  be one generation stops on, and at most the template's own text after it (ChatML's newline);
- the reward model's / judge's input holds the whole answer at the configured answer length, in its own template.

A failure names the two components, the config keys and the first differing token position with both tokens.
`audit.tokens`: `fail` raises before any stage, `warn` logs, `off` skips. The report goes to `token_audit.json`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synpo.errors import ConfigError
from synpo.templates import chat

log = logging.getLogger(__name__)

PROBE_QUESTION = "Name a primary colour and say why it is called primary."
PROBE_ANSWER = "Blue. It cannot be made by mixing other colours of paint."

# The trainers each method runs (TRL's SFTTrainer, CPOTrainer for SimPO, DPOTrainer for SPA).
METHOD_TRAINERS = {
    "synpo": ("sft", "simpo"),
    "spa": ("dpo",),
    "offline_simpo": ("simpo",),
    "sampling_ranking": ("sft", "simpo"),
    "self_rewarding": ("sft", "simpo"),
    "seed_only": ("sft", "simpo"),
    "sft": (),
}
# The methods that score with the `reward` group (the others label with humans or the model's own judgments).
REWARD_METHODS = ("synpo", "sampling_ranking", "spa")
TRAINER_KEYS = {
    "sft": "TRL SFTTrainer (synpo/training.py sft; method.*_sft)",
    "simpo": "TRL CPOTrainer (synpo/training.py simpo, simpo_rows; optimizer.loss=simpo)",
    "dpo": "TRL DPOTrainer (synpo/training.py dpo; method.dpo, method.seed_dpo)",
}


@dataclass
class Finding:
    check: str
    components: list[str]
    keys: list[str]
    ok: bool
    message: str
    detail: dict = field(default_factory=dict)


def token(tokenizer, ids: list[int], i: int) -> str:
    return f"{tokenizer.convert_ids_to_tokens(ids[i])!r} (id {ids[i]})" if i < len(ids) else "(end)"


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Index of the first position where a and b differ (the shorter one's end counts); None when equal."""
    if a == b:
        return None
    return common_prefix(a, b)


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def compare(tokenizer, check: str, names: tuple[str, str], keys: list[str], a: list[int], b: list[int], what: str):
    """A Finding that a == b, else one naming both components and their tokens at the first difference."""
    i = first_difference(a, b)
    if i is None:
        return Finding(check, list(names), keys, True, f"{names[0]} and {names[1]}: same {what} ({len(a)} tokens)")
    message = (
        f"{names[0]} and {names[1]} give different {what} ({len(a)} vs {len(b)} tokens); first difference at position "
        f"{i}: {names[0]} {token(tokenizer, a, i)}, {names[1]} {token(tokenizer, b, i)} [config: {', '.join(keys)}]"
    )
    return Finding(check, list(names), keys, False, message, {"position": i, "a": a, "b": b})


def duplicated_bos(tokenizer, name: str, keys: list[str], ids: list[int]) -> Finding:
    """A sequence must not open with two BOS; a BOS-like token that also opens every turn (SmolLM2's
    `<|im_start|>`) is fine, since it is then followed by a role."""
    bos = tokenizer.bos_token_id
    if bos is not None and ids[:2] == [bos, bos]:
        message = (
            f"the chat template and {name}'s tokenization both add BOS: positions 0 and 1 are "
            f"{token(tokenizer, ids, 0)} and {token(tokenizer, ids, 1)} [config: {', '.join(keys)}]"
        )
        return Finding("bos", ["chat template", name], keys, False, message)
    return Finding("bos", ["chat template", name], keys, True, f"{name}: no duplicated BOS")


# Trainer tokenizations: each returns (prompt ids, label ids) of a probe row, through TRL's own code.


def _trl_args(config_class, **kwargs):
    return config_class(output_dir=tempfile.gettempdir(), report_to="none", bf16=False, use_cpu=True, **kwargs)


def sft_tokens(tokenizer, conversation: list[dict], answer: str, max_length: int) -> tuple[list[int], list[int]]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = _trl_args(SFTConfig, max_length=max_length, completion_only_loss=True, packing=False)
    trainer = types.SimpleNamespace(_tokenizer=tokenizer, chat_template=None, completion_only_loss=True)
    row = {"prompt": conversation, "completion": [{"role": "assistant", "content": answer}]}
    out = SFTTrainer._prepare_dataset(trainer, Dataset.from_list([row]), tokenizer, args, False, None, "audit")[0]
    start = next(i for i, label in enumerate(out["labels"]) if label != -100)
    return out["input_ids"][:start], [label for label in out["labels"] if label != -100]


def simpo_tokens(tokenizer, conversation: list[dict], answer: str, max_length: int) -> tuple[list[int], list[int]]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.cpo import CPOTrainer

    from synpo.training import simpo_rows

    reply = [{"role": "assistant", "content": answer}]
    row = simpo_rows(tokenizer, [{"prompt": conversation, "chosen": reply, "rejected": reply}])[0]
    trainer = types.SimpleNamespace(processing_class=tokenizer, is_encoder_decoder=False, max_length=max_length)
    trainer.build_tokenized_answer = lambda p, a: CPOTrainer.build_tokenized_answer(trainer, p, a)
    out = CPOTrainer.tokenize_row(trainer, row)
    return out["prompt_input_ids"], [label for label in out["chosen_labels"] if label != -100]


def dpo_tokens(tokenizer, conversation: list[dict], answer: str, max_length: int) -> tuple[list[int], list[int]]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    reply = [{"role": "assistant", "content": answer}]
    rows = Dataset.from_list([{"prompt": conversation, "chosen": reply, "rejected": reply}])
    trainer = types.SimpleNamespace(_tokenizer=tokenizer)
    out = DPOTrainer._prepare_dataset(trainer, rows, tokenizer, _trl_args(DPOConfig, max_length=max_length), "audit")
    return out[0]["prompt_ids"], out[0]["chosen_ids"]


TRAINER_TOKENS = {"sft": sft_tokens, "simpo": simpo_tokens, "dpo": dpo_tokens}


def template_turn(tokenizer, conversation: list[dict], answer: str) -> list[int]:
    """The assistant turn as the chat template writes it after the generation prompt, in tokens."""
    prompt = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(conversation + [{"role": "assistant", "content": answer}], tokenize=False)
    encode = lambda t: tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompt_ids, full_ids = encode(prompt), encode(full)
    return full_ids[common_prefix(prompt_ids, full_ids) :]


def stop_ids(model_path: str | None, tokenizer) -> list[int]:
    """The tokens generation stops on: the model's generation config (what `generate` and vLLM use), else EOS."""
    ids = None
    if model_path:
        from transformers import GenerationConfig

        try:
            ids = GenerationConfig.from_pretrained(model_path).eos_token_id
        except OSError:
            ids = None
    if ids is None:
        ids = tokenizer.eos_token_id
    return sorted({ids} if isinstance(ids, int) else set(ids or []))


def check_trainer(tokenizer, name: str, keys: list[str], tokens: Callable, generator_ids: list[int], probe: dict):
    prompt_ids, labels = tokens(tokenizer, probe["conversation"], probe["answer"], probe["max_length"])
    trainer = f"{name} trainer"
    findings = [
        compare(tokenizer, "prompt_ids", ("generator", trainer), keys, generator_ids, prompt_ids, "prompt ids"),
        duplicated_bos(tokenizer, trainer, keys, prompt_ids + labels),
    ]
    turn, stops = probe["turn"], probe["stops"]
    ends = [i for i, t in enumerate(turn) if t in stops]
    allowed = [turn] + ([turn[: ends[0] + 1]] if ends else [])
    n_stops = sum(t in stops for t in labels)
    if labels in allowed and n_stops == 1:
        stop = token(tokenizer, labels, labels.index(turn[ends[0]]))
        message = f"{trainer}: the labels are the template's assistant turn, end-of-turn token {stop} once"
        findings.append(Finding("labels", [trainer, "chat template"], keys, True, message))
    else:
        # The allowed ending the labels follow the longest (equal labels with a wrong stop count: the full turn).
        i, expected = max((common_prefix(labels, a), a) for a in allowed)
        message = (
            f"{trainer} and the chat template: the labels hold {n_stops} token(s) generation stops on (expected "
            f"exactly 1, at the end of the answer); first difference from the template's assistant turn at position "
            f"{i}: {trainer} {token(tokenizer, labels, i)}, chat template {token(tokenizer, expected, i)} "
            f"[config: {', '.join(keys)}]"
        )
        findings.append(Finding("labels", [trainer, "chat template"], keys, False, message, {"labels": labels}))
    return findings


def check_terminator(tokenizer, keys: list[str], probe: dict) -> Finding:
    turn, stops = probe["turn"], probe["stops"]
    names = ["chat template", "generator"]
    if any(t in stops for t in turn):
        return Finding("end_of_turn", names, keys, True, "the chat template ends the assistant turn with a stop token")
    tail = ", ".join(token(tokenizer, turn, i) for i in range(max(0, len(turn) - 3), len(turn)))
    message = (
        f"the chat template ends the assistant turn without a token generation stops on (stops: {stops}); its last "
        f"tokens are {tail}: a model trained on it never learns to stop [config: {', '.join(keys)}]"
    )
    return Finding("end_of_turn", names, keys, False, message)


# Rewards and judges: their own templates by design; the whole answer must be in their input.


def long_answer(tokenizer, n_tokens: int) -> str:
    """An answer of `n_tokens` tokens (give or take a merge at the cut)."""
    ids = tokenizer(" ".join(["word"] * n_tokens), add_special_tokens=False)["input_ids"][:n_tokens]
    return tokenizer.decode(ids)


def answer_length(cfg) -> tuple[int, str]:
    """The longest answer the method generates and scores, and its config key."""
    node = cfg.method.get("max_new_tokens")
    if node is None:
        return 256, "(no method.max_new_tokens: 256 assumed)"
    if isinstance(node, int):
        return node, f"method.max_new_tokens={node}"
    key = max((k for k in node if k != "question"), key=lambda k: node[k])
    return node[key], f"method.max_new_tokens.{key}={node[key]}"


def check_reward_input(cfg, m0_path: str, n_tokens: int, length_key: str) -> list[Finding]:
    from synpo import rewards
    from synpo.judges import as_judge_config

    reward = cfg.reward
    name = f"reward={reward.name}"
    keys = [name, f"reward.max_length={reward.max_length}", length_key]
    if reward.name in ("self_judge", "armorm", "pairrm"):
        from transformers import AutoTokenizer

        default = {"self_judge": m0_path, "armorm": "RLHFlow/ArmoRM-Llama3-8B-v0.1", "pairrm": "llm-blender/PairRM-hf"}
        tokenizer = AutoTokenizer.from_pretrained(reward.model or default[reward.name])
        answer = long_answer(tokenizer, n_tokens)

        def build(max_length):
            if reward.name == "self_judge":
                return rewards.self_judge_ids(tokenizer, max_length, PROBE_QUESTION, answer, cfg.model.system_prompt)
            if reward.name == "armorm":
                return rewards.sequence_rm_ids(tokenizer, max_length, PROBE_QUESTION, answer)
            return rewards.pairrm_ids(tokenizer, max_length, PROBE_QUESTION, answer, answer)

        ids, whole = build(reward.max_length), build(10**9)
        return [reward_finding(tokenizer, name, keys, ids, whole, n_tokens)]
    if reward.name == "judge":
        return [local_judge_finding(as_judge_config(reward.judge), "reward.judge", m0_path, n_tokens, length_key)]
    if reward.name == "implicit" and reward.model:
        from synpo.models import load_tokenizer

        conversation = chat(PROBE_QUESTION, cfg.model.system_prompt) + [{"role": "assistant", "content": PROBE_ANSWER}]
        policy, m0 = (load_tokenizer(p).apply_chat_template(conversation)["input_ids"] for p in (reward.model, m0_path))
        return [
            compare(
                load_tokenizer(m0_path),
                "tokenizer",
                ("M0", "reward.model"),
                ["reward.model", "model.path"],
                m0,
                policy,
                "token ids",
            )
        ]
    return []


def local_judge_finding(judge, key: str, default_model: str, n_tokens: int, length_key: str) -> Finding:
    """A judge sees two answers in a chat prompt (the judge reward's pairwise prompt stands for the suites'): the
    prompt and the judge's own answer must fit the judge model's context."""
    keys = [f"{key}.backend={judge.backend}", f"{key}.max_new_tokens={judge.max_new_tokens}", length_key]
    if judge.backend != "local":
        return Finding("reward_input", [key], keys, True, f"{key}: a remote endpoint applies its own template")
    from transformers import AutoConfig

    from synpo.generation import chat_prompt_ids
    from synpo.models import load_tokenizer
    from synpo.rewards import JUDGE_PAIRWISE_TEMPLATE

    path = judge.model or default_model
    tokenizer = load_tokenizer(path)
    answer = long_answer(tokenizer, n_tokens)
    text = JUDGE_PAIRWISE_TEMPLATE.format(question=PROBE_QUESTION, answer_a=answer, answer_b=answer)
    ids = chat_prompt_ids(tokenizer, [[{"role": "user", "content": text}]])[0]
    window = getattr(AutoConfig.from_pretrained(path), "max_position_embeddings", None) or 10**9
    keys.append(f"the judge's max_position_embeddings={window}")
    return reward_finding(tokenizer, key, keys, ids[: window - judge.max_new_tokens], ids, n_tokens)


def reward_finding(tokenizer, name: str, keys: list[str], ids: list[int], whole: list[int], n_tokens: int) -> Finding:
    special = set(tokenizer.all_special_ids) | {i for i in tokenizer.added_tokens_decoder}
    applied = any(i in special for i in ids)
    cut = len(whole) - len(ids)
    detail = {"input_tokens": len(ids), "cut_tokens": cut, "answer_tokens": n_tokens, "template_applied": applied}
    if cut > 0:
        message = (
            f"{name} and the generator: with an answer of {n_tokens} tokens the scorer's input is cut by {cut} "
            f"tokens ({len(ids)} of {len(whole)} kept); raise the scorer's length or lower the answer length "
            f"[config: {', '.join(keys)}]"
        )
        return Finding("reward_input", [name, "generator"], keys, False, message, detail)
    if not applied:
        message = (
            f"{name}: its input holds none of its tokenizer's special tokens: was its template applied? "
            f"[config: {', '.join(keys)}]"
        )
        return Finding("reward_input", [name], keys, False, message, detail)
    message = f"{name}: the whole answer ({n_tokens} tokens) fits its input ({len(ids)} tokens), template applied"
    return Finding("reward_input", [name], keys, True, message, detail)


def check_lm_eval(tokenizer, cfg) -> list[Finding]:
    """lm-eval's own encoding (`HFLM.tok_encode`) of the probe question, with or without the chat template."""
    from lm_eval.models.huggingface import HFLM

    on = bool(cfg.evaluation.lm_eval.apply_chat_template)
    keys = [f"evaluation.lm_eval.apply_chat_template={on}"]
    text = PROBE_QUESTION
    if on:
        text = tokenizer.apply_chat_template(chat(PROBE_QUESTION), add_generation_prompt=True, tokenize=False)
    prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    lm = types.SimpleNamespace(tokenizer=tokenizer, add_bos_token=None, prefix_token_id=prefix)
    finding = duplicated_bos(tokenizer, "lm-eval", keys, HFLM.tok_encode(lm, text))
    finding.detail["apply_chat_template"] = on
    return [finding]


def audit(cfg, model_path: str, m0_path: str | None = None, prompt_ids: Callable | None = None) -> dict:
    """Run every check the config selects on `model_path` (M0, or the checkpoint in mode=eval); `m0_path` (default
    `model_path`) is the default local judge. `prompt_ids` is the generator's prompt builder; tests pass others."""
    from synpo.generation import chat_prompt_ids
    from synpo.models import load_tokenizer

    m0_path = m0_path or model_path
    tokenizer = load_tokenizer(model_path)
    prompt_ids = prompt_ids or chat_prompt_ids
    conversation = chat(PROBE_QUESTION, cfg.model.system_prompt)
    model_keys = [f"model.path={model_path}", f"model.system_prompt={cfg.model.system_prompt!r}"]
    generator_keys = [f"generation.backend={cfg.generation.backend}", *model_keys]
    probe = {
        "conversation": conversation,
        "answer": PROBE_ANSWER,
        "max_length": 10**6,
        "turn": template_turn(tokenizer, conversation, PROBE_ANSWER),
        "stops": stop_ids(model_path, tokenizer),
    }
    generator_ids = prompt_ids(tokenizer, [conversation])[0]
    findings = [
        duplicated_bos(tokenizer, "generator", generator_keys, generator_ids),
        check_terminator(tokenizer, generator_keys, probe),
    ]
    trainers = METHOD_TRAINERS.get(cfg.method.name, tuple(TRAINER_TOKENS)) if cfg.mode == "train" else ()
    for name in trainers:
        keys = [f"method.name={cfg.method.name}", TRAINER_KEYS[name], *generator_keys]
        findings += check_trainer(tokenizer, name, keys, TRAINER_TOKENS[name], generator_ids, probe)
    if trainers:
        findings.append(
            Finding("tokenizer", ["M0", "M1.."], model_keys, True, "trained models are saved with M0's tokenizer")
        )
    if cfg.mode == "train" and cfg.method.name in REWARD_METHODS:
        findings += check_reward_input(cfg, m0_path, *answer_length(cfg))
    judged = [k for k in ("alpaca_eval", "arena_hard", "mt_bench") if k in cfg.evaluation.suites]
    if judged:
        n, suite = max((cfg.evaluation[k].max_new_tokens, k) for k in judged)
        length_key = f"evaluation.{suite}.max_new_tokens={n}"
        findings.append(local_judge_finding(cfg.evaluation.judge, "evaluation.judge", m0_path, n, length_key))
    if "lm_eval" in cfg.evaluation.suites:
        findings += check_lm_eval(tokenizer, cfg)
    failures = [f for f in findings if not f.ok]
    return {
        "model": model_path,
        "probe": {"conversation": conversation, "answer": PROBE_ANSWER, "stop_ids": probe["stops"]},
        "generator_prompt": tokenizer.convert_ids_to_tokens(generator_ids),
        "template_turn": tokenizer.convert_ids_to_tokens(probe["turn"]),
        "failures": len(failures),
        "findings": [asdict(f) for f in findings],
    }


def run(cfg, model_path: str, m0_path: str, run_dir: Path) -> dict | None:
    """The start-up audit as `synpo` runs it: report written and logged; a failure raises unless audit.tokens=warn."""
    from synpo.io import write_json

    mode = cfg.audit.tokens
    if mode == "off":
        log.info("token audit: off (audit.tokens=off)")
        return None
    report = audit(cfg, model_path, m0_path)
    write_json(run_dir / "token_audit.json", report)
    failures = [f["message"] for f in report["findings"] if not f["ok"]]
    for f in report["findings"]:
        (log.info if f["ok"] else log.warning)("token audit: %s", f["message"])
    log.info(
        "token audit: %d checks, %d failed; %s", len(report["findings"]), len(failures), run_dir / "token_audit.json"
    )
    if failures and mode == "fail":
        raise ConfigError("token audit failed (audit.tokens=warn goes on, off skips it):\n  " + "\n  ".join(failures))
    return report
