"""The real loading and scoring code of `pairrm`, `armorm` and `implicit`, on tiny random models of the same
architectures, saved locally; and the preflight's errors for what cannot be loaded."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from synpo.config import RewardConfig
from synpo.errors import ModelError
from synpo.models import load_causal_lm, load_tokenizer
from synpo.rewards import _pairrm_encoder, check_reward, make_reward, pairrm_ids, pairrm_model_class
from synpo.templates import chat

PROMPTS = ["What is the capital of France?", "Name a prime number larger than ten, and explain why it is prime."]
GOOD = ["Paris is the capital of France.", "Eleven: it has no divisors other than one and itself."]
BAD = ["Lyon.", "Twelve, because it is even and large enough to be prime in most cases."]


@pytest.fixture(scope="module")
def tiny_pairrm(tmp_path_factory):
    """A 2-layer DeBERTa-v2 PairRM in PairRM-hf's layout, with a DeBERTa-v2 tokenizer built offline."""
    from transformers import DebertaV2Config, DebertaV2Tokenizer

    path = tmp_path_factory.mktemp("pairrm") / "model"
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = sorted({w for text in PROMPTS + GOOD + BAD for w in text.replace(",", " ").split()})
    vocab = [(t, 0.0) for t in special] + [(f"▁{w}", -2.0) for w in pieces]
    vocab += [(c, -5.0) for c in "▁abcdefghijklmnopqrstuvwxyz.,:?ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    tokenizer = DebertaV2Tokenizer(vocab=vocab, unk_id=1)
    tokenizer.add_tokens(["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"])
    prefix = tokenizer.convert_tokens_to_ids(["<|source|>", "<|candidate1|>", "<|candidate2|>", "<|candidate|>"])
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=64,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pad_token_id=tokenizer.pad_token_id,
        architectures=["DebertaV2PairRM"],
        n_tasks=1,
        drop_out=0.05,
        source_prefix_id=prefix[0],
        cand1_prefix_id=prefix[1],
        cand2_prefix_id=prefix[2],
        cand_prefix_id=prefix[3],
    )
    torch.manual_seed(0)
    model = pairrm_model_class()(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_pairrm_loads_the_checkpoint_and_gap_is_the_two_order_logit_difference(tiny_pairrm):
    from safetensors.torch import load_file

    reward = make_reward(RewardConfig(name="pairrm", model=str(tiny_pairrm), threshold=0.2, batch_size=3), "unused")
    saved = load_file(tiny_pairrm / "model.safetensors")
    assert any(k.startswith("pretrained_model.") for k in saved) and "head_layer.4.weight" in saved
    loaded = reward.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved.items())

    gaps = reward.gaps(PROMPTS, GOOD, BAD)
    forward = reward.logits(PROMPTS, GOOD, BAD)
    backward = reward.logits(PROMPTS, BAD, GOOD)
    for g, f, b in zip(gaps, forward, backward, strict=True):
        assert g["gap"] == pytest.approx(f - b, abs=1e-6)
        assert g["chosen_score"] == pytest.approx((f - b) / 2, abs=1e-6) == -g["rejected_score"]
    swapped = reward.gaps(PROMPTS, BAD, GOOD)
    assert [s["gap"] for s in swapped] == pytest.approx([-g["gap"] for g in gaps], abs=1e-6)
    assert reward.gaps(PROMPTS[:1], GOOD[:1], GOOD[:1])[0]["gap"] == pytest.approx(0.0, abs=1e-6)
    # Batching and padding do not change a logit.
    alone = [reward.logits([p], [g], [b])[0] for p, g, b in zip(PROMPTS, GOOD, BAD, strict=True)]
    assert alone == pytest.approx(forward, abs=1e-5)
    # The input follows the PairRM-hf card: [CLS]<|source|>x[SEP] [CLS]<|candidate1|>a[SEP] [CLS]<|candidate2|>b[SEP]
    ids = pairrm_ids(reward.tokenizer, reward.cfg.max_length, "x", "a", "b")
    tokens = reward.tokenizer.convert_ids_to_tokens(ids)
    assert [t for t in tokens if t.startswith(("[", "<|"))] == [
        "[CLS]",
        "<|source|>",
        "[SEP]",
        "[CLS]",
        "<|candidate1|>",
        "[SEP]",
        "[CLS]",
        "<|candidate2|>",
        "[SEP]",
    ]


def test_pairrm_inputs_are_the_same_with_the_memoised_encoder(tiny_pairrm):
    """A round robin's games reuse the encoded source and candidates; the inputs must not change, also where the
    source is cut to max_length and the candidates to their share of what is left."""
    reward = make_reward(RewardConfig(name="pairrm", model=str(tiny_pairrm), max_length=16), m0_path=None)
    sources = [" ".join(["river garden"] * 40), "a short question"]
    samples = ["good answer", " ".join(["bad"] * 500), "", "good answer"]
    encode = _pairrm_encoder(reward.tokenizer, memo=4)
    for source in sources:
        for a in samples:
            for b in samples:
                plain = pairrm_ids(reward.tokenizer, 16, source, a, b)
                assert pairrm_ids(reward.tokenizer, 16, source, a, b, encode=encode) == plain
    assert encode.cache_info().hits > 0


def test_pairrm_refuses_llm_blenders_own_layout(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"ranker_type": "pairranker", "model_type": "deberta"}))
    with pytest.raises(ModelError, match="llm-blender/PairRM-hf"):
        check_reward(RewardConfig(name="pairrm", model=str(tmp_path)))


def test_unreachable_hub_ids_fail_in_the_preflight(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for name in ("pairrm", "armorm"):
        with pytest.raises(ModelError, match="cannot be loaded"):
            check_reward(RewardConfig(name=name))


@pytest.fixture(scope="module")
def tiny_rm(tiny_model, tmp_path_factory):
    """A 2-layer LlamaForSequenceClassification (ArmoRM's backbone class) with the embedded chat tokenizer."""
    from transformers import AutoConfig, LlamaForSequenceClassification

    path = tmp_path_factory.mktemp("rm") / "model"
    config = AutoConfig.from_pretrained(tiny_model)
    config.num_labels = 1
    torch.manual_seed(1)
    LlamaForSequenceClassification(config).save_pretrained(path)
    load_tokenizer(str(tiny_model)).save_pretrained(path)
    return path


def test_armorm_scores_a_sequence_classifier(tiny_rm):
    from transformers import AutoModelForSequenceClassification

    reward = make_reward(RewardConfig(name="armorm", model=str(tiny_rm), batch_size=2), "unused")
    scores = reward.score(PROMPTS + PROMPTS, GOOD + BAD)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_rm).eval()
    tokenizer = load_tokenizer(str(tiny_rm))
    for prompt, answer, score in zip(PROMPTS + PROMPTS, GOOD + BAD, scores, strict=True):
        conv = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        ids = tokenizer(tokenizer.apply_chat_template(conv, tokenize=False), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            assert model(input_ids=torch.tensor([ids])).logits[0, 0].item() == pytest.approx(score, abs=1e-5)
    gaps = reward.gaps(PROMPTS, GOOD, BAD)
    assert [g["gap"] for g in gaps] == pytest.approx([scores[0] - scores[2], scores[1] - scores[3]])


CUSTOM_CODE = """
from dataclasses import dataclass

import torch
from transformers import LlamaForSequenceClassification
from transformers.utils import ModelOutput


@dataclass
class RewardOutput(ModelOutput):
    score: torch.FloatTensor | None = None


class GatedRewardModel(LlamaForSequenceClassification):
    def forward(self, *args, **kwargs):
        return RewardOutput(score=super().forward(*args, **kwargs).logits * 10)
"""


def test_armorm_custom_code_needs_trust_remote_code_and_reads_score(tiny_rm, tmp_path):
    path = tmp_path / "custom"
    shutil.copytree(tiny_rm, path)
    (path / "modeling_custom.py").write_text(CUSTOM_CODE)
    config = json.loads((path / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.GatedRewardModel"}
    (path / "config.json").write_text(json.dumps(config))

    with pytest.raises(ModelError, match="set reward.trust_remote_code=true"):
        check_reward(RewardConfig(name="armorm", model=str(path)))
    with pytest.raises(ModelError, match="set reward.trust_remote_code=true"):
        make_reward(RewardConfig(name="armorm", model=str(path)), "unused")
    cfg = RewardConfig(name="armorm", model=str(path), trust_remote_code=True)
    check_reward(cfg)
    plain = make_reward(RewardConfig(name="armorm", model=str(tiny_rm)), "unused").score(PROMPTS, GOOD)
    assert make_reward(cfg, "unused").score(PROMPTS, GOOD) == pytest.approx([10 * s for s in plain], rel=1e-4)


# Llama-3's chat template (Meta-Llama-3-8B-Instruct's, ArmoRM's).
LLAMA3_TEMPLATE = (
    "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

FIRST_PAD_CODE = """
import torch
from transformers import LlamaForSequenceClassification
from transformers.modeling_outputs import SequenceClassifierOutputWithPast


class FirstPadLlamaForSequenceClassification(LlamaForSequenceClassification):
    \"\"\"The head of older transformers' LlamaForSequenceClassification and of ArmoRM's remote code: the sequence
    ends before the first pad id.\"\"\"

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        logits = self.score(self.model(input_ids, attention_mask=attention_mask).last_hidden_state)
        ends = (torch.eq(input_ids, self.config.pad_token_id).int().argmax(-1) - 1) % input_ids.shape[-1]
        return SequenceClassifierOutputWithPast(logits=logits[torch.arange(input_ids.shape[0]), ends])
"""


@pytest.fixture(scope="module")
def first_pad_rm(tmp_path_factory):
    """A 2-layer Llama-shaped classifier that finds a sequence's end from the first pad id (remote code, as
    ArmoRM), with a word-level tokenizer that has Llama-3's special tokens and chat template and no pad token."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("first_pad_rm") / "model"
    special = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<unk>"]
    words = sorted({w for t in PROMPTS + GOOD + BAD + ["user assistant"] for w in re.findall(r"\w+", t)})
    vocab = {t: i for i, t in enumerate(special + words + list(".,:?"))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", unk_token="<unk>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": special[:4]})
    tokenizer.chat_template = LLAMA3_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer) + 8,  # a few unused ids, as Llama-3's reserved special tokens
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=1,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        auto_map={"AutoModelForSequenceClassification": "modeling_first_pad.FirstPadLlamaForSequenceClassification"},
    )
    torch.manual_seed(3)
    from transformers import LlamaForSequenceClassification

    LlamaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "modeling_first_pad.py").write_text(FIRST_PAD_CODE)
    return path


def test_armorm_reads_the_score_at_the_end_of_the_answer_whatever_the_head(first_pad_rm):
    """With pad = EOS = <|eot_id|>, a first-pad head read the end of the user's turn: one score per prompt."""
    from transformers import AutoModelForSequenceClassification

    reward = make_reward(RewardConfig(name="armorm", model=str(first_pad_rm), trust_remote_code=True), "unused")
    assert reward.tokenizer.pad_token == "<|eot_id|>"  # load_tokenizer's pad = EOS: the trap
    scores = reward.score(PROMPTS + PROMPTS, GOOD + BAD)
    assert scores[0] != pytest.approx(scores[2]) and scores[1] != pytest.approx(scores[3])

    model = AutoModelForSequenceClassification.from_pretrained(first_pad_rm, trust_remote_code=True).eval()
    tokenizer = reward.tokenizer
    for prompt, answer, score in zip(PROMPTS + PROMPTS, GOOD + BAD, scores, strict=True):
        conv = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
        ids = tokenizer(tokenizer.apply_chat_template(conv, tokenize=False), add_special_tokens=False)["input_ids"]
        assert ids[-1] == tokenizer.convert_tokens_to_ids("<|eot_id|>") and tokenizer.unk_token_id not in ids
        with torch.no_grad():  # the head on the last token, by hand
            last = model.model(torch.tensor([ids])).last_hidden_state[0, -1]
            assert model.score(last)[0].item() == pytest.approx(score, abs=1e-5)


@pytest.fixture(scope="module")
def tiny_reference(tiny_model, tmp_path_factory):
    """The tiny model with other random weights: a reference that differs from the policy."""
    from transformers import AutoConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("reference") / "model"
    torch.manual_seed(2)
    LlamaForCausalLM(AutoConfig.from_pretrained(tiny_model)).save_pretrained(path)
    load_tokenizer(str(tiny_model)).save_pretrained(path)
    return path


def _answer_logp_by_hand(model, tokenizer, prompt: str, answer: str) -> float:
    """Sum of log p(token | everything before it) over the answer's tokens, one unbatched forward per token."""
    conv = chat(prompt)
    prompt_text = tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
    full_text = tokenizer.apply_chat_template(conv + [{"role": "assistant", "content": answer}], tokenize=False)
    assert full_text.startswith(prompt_text)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    total = 0.0
    with torch.no_grad():
        for t in range(len(prompt_ids), len(ids)):
            logits = model(input_ids=torch.tensor([ids[:t]])).logits[0, -1]
            total += torch.log_softmax(logits.double(), dim=-1)[ids[t]].item()
    return total


def test_implicit_reward_is_the_policy_reference_log_ratio(tiny_model, tiny_reference):
    cfg = RewardConfig(name="implicit", model=str(tiny_model), batch_size=3)
    check_reward(cfg, str(tiny_reference))
    reward = make_reward(cfg, str(tiny_reference))  # the reference defaults to M0
    scores = reward.score(PROMPTS + PROMPTS, GOOD + BAD)
    policy, reference = load_causal_lm(str(tiny_model)), load_causal_lm(str(tiny_reference))
    tokenizer = load_tokenizer(str(tiny_model))
    for prompt, answer, score in zip(PROMPTS + PROMPTS, GOOD + BAD, scores, strict=True):
        expected = _answer_logp_by_hand(policy, tokenizer, prompt, answer) - _answer_logp_by_hand(
            reference, tokenizer, prompt, answer
        )
        assert score == pytest.approx(expected, abs=1e-3)
    explicit = RewardConfig(name="implicit", model=str(tiny_model), reference=str(tiny_model))
    assert make_reward(explicit, str(tiny_reference)).score(PROMPTS, GOOD) == pytest.approx([0.0, 0.0], abs=1e-6)
    with pytest.raises(ModelError, match="reward.model=<the policy>"):
        make_reward(RewardConfig(name="implicit"), str(tiny_reference))


def test_self_judge_scores_are_p_yes_over_yes_and_no_at_the_answers_end(tiny_model):
    from synpo.rewards import self_judge_ids

    reward = make_reward(RewardConfig(name="self_judge", batch_size=2), str(tiny_model))
    scores = reward.score(PROMPTS + PROMPTS, GOOD + BAD)  # batches of rows of different lengths, left padded
    lm, tokenizer = load_causal_lm(str(tiny_model)), load_tokenizer(str(tiny_model))
    yes, no = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in ("Yes", "No"))
    for prompt, answer, score in zip(PROMPTS + PROMPTS, GOOD + BAD, scores, strict=True):
        ids = self_judge_ids(tokenizer, 768, prompt, answer, None)
        with torch.no_grad():
            logits = lm(input_ids=torch.tensor([ids])).logits[0, -1].double()
        assert score == pytest.approx(float(torch.softmax(logits[[yes, no]], -1)[0]), abs=1e-4)
    bf16 = make_reward(RewardConfig(name="self_judge", dtype="bfloat16"), str(tiny_model))
    assert next(bf16.model.parameters()).dtype == torch.bfloat16  # reward.dtype reaches the judge model
    assert bf16.score(PROMPTS, GOOD) == pytest.approx(scores[:2], abs=0.05)
