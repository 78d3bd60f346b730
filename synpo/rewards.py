"""Reward models: score (prompt, answer) pairs; the filter thresholds score(chosen) - score(rejected).

Rewards register by name (`reward.name`), like lm-eval's tasks. `check_reward` is the preflight: it fails
before any generation when a reward's model, endpoint or key cannot be had, saying what to set.
"""

from __future__ import annotations

import functools
import logging
import re

import torch
from tqdm.auto import tqdm

from synpo.config import RewardConfig
from synpo.errors import ModelError
from synpo.inference import answer_logps, left_padded, prepack_linears, right_padded
from synpo.judges import as_judge_config, make_judge_client
from synpo.models import check_loadable, load_causal_lm, load_tokenizer, torch_dtype
from synpo.registry import Registry
from synpo.templates import chat

log = logging.getLogger(__name__)

REWARDS = Registry()
register_reward = REWARDS.register


class Reward:
    """A pointwise reward implements `score`; a pairwise one (PairRM, a judge) overrides `gaps`."""

    def score(self, prompts: list[str], answers: list[str]) -> list[float]:
        raise NotImplementedError

    def gaps(self, prompts: list[str], chosen: list[str], rejected: list[str]) -> list[dict]:
        """One {"gap", ...} per triple; the filters keep a pair when gap > reward.threshold."""
        n = len(prompts)
        both = self.score(prompts + prompts, chosen + rejected)
        return [{"gap": c - r, "chosen_score": c, "rejected_score": r} for c, r in zip(both[:n], both[n:], strict=True)]

    def sample_scores(self, prompts: list[str], samples: list[list[str]]) -> list[list[float | None]]:
        """Scores that order each prompt's samples (Sampling-Ranking). A pointwise reward scores every sample; a
        pairwise one (it implements `gaps` only: PairRM, a judge) compares every two samples of a prompt and scores
        a sample by its mean gap against the others (a round robin), which for a pointwise reward would give the
        same order. Comparisons without a gap (a judge's unparsable verdicts) are left out of the mean; a sample
        with none left has no score (None)."""
        if type(self).score is not Reward.score:
            flat = iter(self.score([p for p, s in zip(prompts, samples, strict=True) for _ in s], sum(samples, [])))
            return [[next(flat) for _ in s] for s in samples]
        games = [(k, i, j) for k, s in enumerate(samples) for i in range(len(s)) for j in range(i + 1, len(s))]
        gaps = self.gaps(
            [prompts[k] for k, _, _ in games],
            [samples[k][i] for k, i, _ in games],
            [samples[k][j] for k, _, j in games],
        )
        results: list[list[list[float]]] = [[[] for _ in s] for s in samples]
        for (k, i, j), g in zip(games, gaps, strict=True):
            if g["gap"] is not None:
                results[k][i].append(g["gap"])
                results[k][j].append(-g["gap"])
        return [[sum(r) / len(r) if r else None for r in row] for row in results]


def make_reward(cfg: RewardConfig, m0_path: str, system_prompt: str | None = None) -> Reward:
    if cfg.name not in REWARDS:
        raise ValueError(f"reward={cfg.name!r} is not available; available rewards: {sorted(REWARDS)}")
    return REWARDS[cfg.name](cfg, m0_path, system_prompt)


JUDGE_TEMPLATE = """Here is a question and an answer to it.

Question: {question}

Answer: {answer}

Is the answer helpful, correct and complete? Reply with Yes or No."""


def self_judge_ids(tokenizer, max_length: int, prompt: str, answer: str, system_prompt: str | None) -> list[int]:
    """The self_judge input: the yes/no question in the judge's chat template. The answer is truncated to fit
    `reward.max_length` so the verdict token always stays in view."""
    budget = max(16, max_length - 128)
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"][:budget]
    text = JUDGE_TEMPLATE.format(question=prompt, answer=tokenizer.decode(answer_ids))
    ids = tokenizer.apply_chat_template(chat(text, system_prompt), add_generation_prompt=True, tokenize=False)
    return tokenizer(ids, add_special_tokens=False)["input_ids"][-max_length:]


@register_reward("self_judge")
class SelfJudge(Reward):
    """P(Yes) / (P(Yes) + P(No)) for the judge model's next token after a yes/no question about the answer.

    With `reward.model` unset the judge is M0 itself, the paper's "the model itself" scorer. It needs only
    one forward pass per answer, the cheapest real-model reward on a CPU.
    """

    def __init__(self, cfg: RewardConfig, m0_path: str, system_prompt: str | None = None):
        path = cfg.model or m0_path
        self.cfg = cfg
        self.system_prompt = system_prompt
        self.tokenizer = load_tokenizer(path)
        self.tokenizer.padding_side = "left"
        self.model = load_causal_lm(path, cfg.dtype, cfg.trust_remote_code)
        prepack_linears(self.model)
        self.yes = self._token_id("Yes")
        self.no = self._token_id("No")

    def _token_id(self, word: str) -> int:
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"reward=self_judge: '{word}' is not a single token for this tokenizer")
        return ids[0]

    @torch.inference_mode()
    def score(self, prompts: list[str], answers: list[str]) -> list[float]:
        encoded = [
            self_judge_ids(self.tokenizer, self.cfg.max_length, p, a, self.system_prompt)
            for p, a in zip(prompts, answers, strict=True)
        ]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        scores = [0.0] * len(encoded)
        pad = self.tokenizer.pad_token_id
        for start in tqdm(range(0, len(order), self.cfg.batch_size), desc="score", leave=False):
            batch = order[start : start + self.cfg.batch_size]
            ids, mask = left_padded([encoded[i] for i in batch], pad)
            logits = self.model(input_ids=ids, attention_mask=mask, logits_to_keep=1).logits[:, -1, :]
            pair = torch.log_softmax(logits[:, [self.yes, self.no]].float(), dim=-1)
            for j, i in enumerate(batch):
                scores[i] = float(pair[j, 0].exp())
        return scores


JUDGE_PAIRWISE_TEMPLATE = """Please act as an impartial judge and compare the two answers to the user question below. \
Prefer the answer that follows the instructions and answers the question better: consider helpfulness, correctness, \
relevance, depth and level of detail. Neither the order of the answers nor their length may influence you. Explain \
your reasoning briefly, then give your verdict on the last line in exactly this format: [[A]] if answer A is \
better, [[B]] if answer B is better, [[C]] for a tie.

[User Question]
{question}

[The Start of Answer A]
{answer_a}
[The End of Answer A]

[The Start of Answer B]
{answer_b}
[The End of Answer B]"""

_VERDICT = re.compile(r"\[\[([ABC])\]\]")


def parse_verdict(text: str) -> str | None:
    """The last [[A]] / [[B]] / [[C]] in a judge's completion; None when it gave none."""
    found = _VERDICT.findall(text)
    return found[-1] if found else None


@register_reward("judge")
class Judge(Reward):
    """An LLM judge comparing chosen and rejected in both orders, which cancels its position bias.

    gap = P(chosen wins) averaged over the two orders - 0.5, in [-0.5, 0.5], where a win counts 1, a tie ([[C]])
    0.5 and a loss 0: with threshold 0.25 a pair is kept only when chosen wins in both orders. A pair whose two
    verdicts do not both parse is not scored (gap None, its "unparsed" count says how many failed): the stages
    count it as "unscored" and leave it out. With `reward.judge.verdict=logprobs` the verdicts are probabilities
    instead, P(A), P(B), P(C) of [[A]], [[B]], [[C]] (AlpacaEval 2's weighted annotator reads its judge the same
    way): a win counts P(chosen's letter) + P(C) / 2, so the gap is continuous and every pair is scored. The judge
    is `reward.judge` (a local model, M0 by default, or an OpenAI-compatible endpoint).
    """

    def __init__(self, cfg: RewardConfig, m0_path: str, system_prompt: str | None = None):
        judge = as_judge_config(cfg.judge)
        self.client = make_judge_client(judge, m0_path if judge.backend == "local" else None, "reward.judge")

    def gaps(self, prompts: list[str], chosen: list[str], rejected: list[str]) -> list[dict]:
        conversations = []
        for p, c, r in zip(prompts, chosen, rejected, strict=True):
            for a, b in ((c, r), (r, c)):
                text = JUDGE_PAIRWISE_TEMPLATE.format(question=p, answer_a=a, answer_b=b)
                conversations.append([{"role": "user", "content": text}])
        if self.client.cfg.verdict == "logprobs":
            return self._weighted_gaps(conversations)
        verdicts = [parse_verdict(t) for t in self.client.complete(conversations)]
        results = []
        for first, second in zip(verdicts[::2], verdicts[1::2], strict=True):
            # chosen is A in the first order, B in the second.
            unparsed = (first is None) + (second is None)
            wins = [{"A": 1.0, "B": 0.0}.get(first, 0.5), {"A": 0.0, "B": 1.0}.get(second, 0.5)]
            gap = None if unparsed else sum(wins) / 2 - 0.5
            results.append({"gap": gap, "verdicts": [first, second], "unparsed": unparsed})
        unparsed = sum(r["unparsed"] for r in results)
        if unparsed:
            log.warning(
                "reward=judge: %d of %d verdicts did not parse; their pairs are unscored", unparsed, len(verdicts)
            )
        return results

    def _weighted_gaps(self, conversations: list[list[dict]]) -> list[dict]:
        rows = self.client.option_logprobs(conversations, ["A", "B", "C"], prefill="[[", suffix="]]")
        probs = torch.tensor(rows).softmax(-1).tolist()
        results = []
        for first, second in zip(probs[::2], probs[1::2], strict=True):
            # chosen is A in the first order, B in the second; a tie is worth half a win.
            wins = [first[0] + first[2] / 2, second[1] + second[2] / 2]
            verdicts = ["ABC"[max(range(3), key=p.__getitem__)] for p in (first, second)]
            results.append({"gap": sum(wins) / 2 - 0.5, "verdicts": verdicts, "win_probs": wins, "unparsed": 0})
        return results


PAIRRM_CANDIDATE_MAX_LENGTH = 412


@functools.cache
def pairrm_model_class():
    """Built on first use: importing the DeBERTa modules costs seconds that `synpo --help` should not pay."""
    from torch import nn
    from transformers.models.deberta_v2.modeling_deberta_v2 import DebertaV2Model, DebertaV2PreTrainedModel

    class PairRMModel(DebertaV2PreTrainedModel):
        """llm-blender's PairRM in transformers' layout (`llm-blender/PairRM-hf`, class `DebertaV2PairRM`).

        A DeBERTa-v2 encoder reads `<|source|>x <|candidate1|>a <|candidate2|>b`; one head scores the concatenated
        hidden states [source; candidate] at the two candidates' prefix tokens; the logit is head(a) - head(b),
        averaged over the heads (`n_tasks`), > 0 when a is better. The parameter names match the checkpoint.
        """

        base_model_prefix = "pretrained_model"

        def __init__(self, config):
            super().__init__(config)
            hidden, dropout = config.hidden_size, getattr(config, "drop_out", 0.05)
            self.pretrained_model = DebertaV2Model(config)
            self.head_layer = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(2 * hidden, hidden),
                nn.Tanh(),
                nn.Dropout(dropout),
                nn.Linear(hidden, getattr(config, "n_tasks", 1)),
            )
            self.post_init()

        def forward(self, input_ids, attention_mask, prefix_ids: tuple[int, int, int]) -> torch.Tensor:
            states = self.pretrained_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            rows = torch.arange(len(input_ids))
            # The first occurrence of each prefix token: a text that contains one verbatim cannot shift the pair.
            source, cand1, cand2 = (states[rows, (input_ids == i).int().argmax(-1)] for i in prefix_ids)
            left = self.head_layer(torch.cat([source, cand1], dim=-1))
            right = self.head_layer(torch.cat([source, cand2], dim=-1))
            return (left - right).mean(dim=-1)

    return PairRMModel


def _check_pairrm(path: str) -> None:
    from transformers import PretrainedConfig

    try:
        layout = PretrainedConfig.get_config_dict(path)[0]
    except (OSError, ValueError) as e:
        raise ModelError(
            f"reward.model={path!r} cannot be loaded: {str(e).splitlines()[0]}\n"
            "Give a local folder, or make the hub reachable."
        ) from e
    if "ranker_type" in layout:
        raise ModelError(
            f"reward.model={path!r} is llm-blender's own checkpoint layout; use llm-blender/PairRM-hf, "
            "the same weights in transformers' layout"
        )
    check_loadable(path, "reward.model")


def pairrm_ids(tokenizer, max_length: int, source: str, cand1: str, cand2: str, encode=None) -> list[int]:
    """PairRM's input `<|source|>x <|candidate1|>a <|candidate2|>b`, each part cut to its share of the length.
    `encode(text, max_length)` (a memo of the tokenizer's, see `PairRM.logits`) returns the ids of one part."""
    encode = encode or _pairrm_encoder(tokenizer)
    total = max_length + 2 * PAIRRM_CANDIDATE_MAX_LENGTH
    ids = list(encode("<|source|>" + source, max_length))
    budget = (total - len(ids)) // 2
    for prefix, text in (("<|candidate1|>", cand1), ("<|candidate2|>", cand2)):
        ids += encode(prefix + text, budget)
    return ids


def _pairrm_encoder(tokenizer, memo: int = 0):
    """The tokenizer's ids of one input part cut at `max_length`; with `memo`, the last `memo` distinct parts are
    kept: a pair's two orders, and a round robin's games, repeat the same source and candidates."""

    def encode(text: str, max_length: int) -> tuple[int, ...]:
        return tuple(tokenizer.encode(text, max_length=max_length, truncation=True))

    return functools.lru_cache(maxsize=memo)(encode) if memo else encode


@register_reward("pairrm")
class PairRM(Reward):
    """PairRM (Jiang et al. 2023), the scorer of SynPO's Mistral setting, as the SimPO repo uses it.

    The pair is compared in both orders, as llm-blender's `Blender.rank([x], [[chosen, rejected]],
    return_scores=True)` does (and `Blender.compare(..., mode="[A,B]+[B,A]")`). With logit(a, b) the model's
    output with a in the candidate1 slot, the scores are s(chosen) = (logit(chosen, rejected) -
    logit(rejected, chosen)) / 2 and s(rejected) = -s(chosen), and
    gap = s(chosen) - s(rejected) = logit(chosen, rejected) - logit(rejected, chosen):
    the PairRM score gap that SynPO thresholds at 0.20. Inputs follow the PairRM-hf card: the source gets at most
    `reward.max_length` (1224) tokens, each candidate half of what is left of 1224 + 2 * 412.
    """

    def __init__(self, cfg: RewardConfig, m0_path: str, system_prompt: str | None = None):
        from transformers import AutoTokenizer

        path = cfg.model or "llm-blender/PairRM-hf"
        _check_pairrm(path)
        self.cfg = cfg
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.prefix_ids = tuple(
            self.tokenizer.convert_tokens_to_ids(t) for t in ("<|source|>", "<|candidate1|>", "<|candidate2|>")
        )
        if self.tokenizer.unk_token_id in self.prefix_ids:
            raise ModelError(f"reward.model={path!r}: the tokenizer lacks PairRM's <|source|>/<|candidate|> tokens")
        self.model = pairrm_model_class().from_pretrained(path, dtype=torch_dtype(cfg.dtype)).eval()
        prepack_linears(self.model)

    @torch.inference_mode()
    def logits(self, prompts: list[str], first: list[str], second: list[str]) -> list[float]:
        """logit(first, second) for each triple: > 0 when PairRM prefers `first`."""
        encode = _pairrm_encoder(self.tokenizer, memo=64)
        encoded = [
            pairrm_ids(self.tokenizer, self.cfg.max_length, *t, encode=encode)
            for t in zip(prompts, first, second, strict=True)
        ]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        out = [0.0] * len(encoded)
        for start in tqdm(range(0, len(order), self.cfg.batch_size), desc="pairrm", leave=False):
            batch = order[start : start + self.cfg.batch_size]
            ids, mask = right_padded([encoded[i] for i in batch], self.tokenizer.pad_token_id)
            for i, value in zip(batch, self.model(ids, mask, self.prefix_ids).float().tolist(), strict=True):
                out[i] = value
        return out

    def gaps(self, prompts: list[str], chosen: list[str], rejected: list[str]) -> list[dict]:
        # Each pair's two orders side by side, so that the second reuses the first's encoded parts.
        both = self.logits(
            [p for p in prompts for _ in range(2)],
            [x for pair in zip(chosen, rejected, strict=True) for x in pair],
            [x for pair in zip(rejected, chosen, strict=True) for x in pair],
        )
        results = []
        for forward, backward in zip(both[::2], both[1::2], strict=True):
            s = (forward - backward) / 2
            results.append({"gap": 2 * s, "chosen_score": s, "rejected_score": -s})
        return results


def _check_sequence_rm(path: str, trust_remote_code: bool) -> None:
    """Without trust_remote_code transformers would silently load the stock class (a random head) for a
    model whose config maps AutoModelForSequenceClassification to custom code, such as ArmoRM."""
    from transformers import AutoConfig

    check_loadable(path, "reward.model", trust_remote_code)
    auto_map = getattr(AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code), "auto_map", None) or {}
    if "AutoModelForSequenceClassification" in auto_map and not trust_remote_code:
        raise ModelError(
            f"reward.model={path!r} ships its own model code ({auto_map['AutoModelForSequenceClassification']}): "
            "set reward.trust_remote_code=true to run it"
        )


def sequence_rm_ids(tokenizer, max_length: int, prompt: str, answer: str) -> list[int]:
    """A sequence-classification RM's input: [user: prompt, assistant: answer] in the RM's own chat template."""
    conv = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    text = tokenizer.apply_chat_template(conv, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"][:max_length]


@register_reward("armorm")
class SequenceRM(Reward):
    """A pointwise reward model through AutoModelForSequenceClassification: ArmoRM
    (RLHFlow/ArmoRM-Llama3-8B-v0.1, SynPO's Llama3 scorer, threshold 0.02 on the score difference) or any
    ordinary sequence-classification RM. The score is ArmoRM's `.score` (its gated preference score), else
    `.logits[:, 0]`, of the chat [user: prompt, assistant: answer].

    Batches are right-padded with an id that occurs in none of the sequences scored, set as the model's
    `config.pad_token_id`, so the score is read at the sequence's last token whichever way the head finds it.
    ArmoRM's remote code (`modeling_custom.py`, `LlamaForRewardModelWithGating`, as older `transformers`'
    `LlamaForSequenceClassification`) reads the reward before the *first* pad id, `argmax(input_ids == pad) - 1`;
    today's stock head reads the last token that is not the pad id. ArmoRM's tokenizer adds a `[PAD]` (id 128256),
    safe either way where it is the pad; with a tokenizer without one (pad = EOS = `<|eot_id|>`) the first pad id is
    the `<|eot_id|>` that closes the user's turn: the score of the prompt alone, the same for every answer
    (and the stock head would skip the final `<|eot_id|>`). Padding with a free id keeps batching (`batch_size`),
    which one sequence at a time would give up for no gain in correctness."""

    def __init__(self, cfg: RewardConfig, m0_path: str, system_prompt: str | None = None):
        from transformers import AutoModelForSequenceClassification

        path = cfg.model or "RLHFlow/ArmoRM-Llama3-8B-v0.1"
        _check_sequence_rm(path, cfg.trust_remote_code)
        self.cfg = cfg
        self.tokenizer = load_tokenizer(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=torch_dtype(cfg.dtype), trust_remote_code=cfg.trust_remote_code
        ).eval()
        prepack_linears(self.model)

    def _free_pad_id(self, rows: list[list[int]]) -> int:
        """The tokenizer's pad id if no row contains it (ArmoRM's `[PAD]`), else the highest id of the embedding no
        row contains (in Llama-3, a reserved special token)."""
        used = {t for r in rows for t in r}
        size = self.model.get_input_embeddings().num_embeddings
        own = self.tokenizer.pad_token_id
        if own is not None and own < size and own not in used:
            return own
        return next(i for i in range(size - 1, -1, -1) if i not in used)

    @torch.inference_mode()
    def score(self, prompts: list[str], answers: list[str]) -> list[float]:
        encoded = [
            sequence_rm_ids(self.tokenizer, self.cfg.max_length, p, a) for p, a in zip(prompts, answers, strict=True)
        ]
        pad = self.model.config.pad_token_id = self._free_pad_id(encoded)
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        scores = [0.0] * len(encoded)
        for start in tqdm(range(0, len(order), self.cfg.batch_size), desc="score", leave=False):
            batch = order[start : start + self.cfg.batch_size]
            ids, mask = right_padded([encoded[i] for i in batch], pad)
            output = self.model(input_ids=ids, attention_mask=mask)
            values = output.score if getattr(output, "score", None) is not None else output.logits[:, 0]
            for i, value in zip(batch, values.reshape(len(batch), -1)[:, 0].float().tolist(), strict=True):
                scores[i] = value
        return scores


@register_reward("implicit")
class ImplicitReward(Reward):
    """DPO's implicit reward r(x, y) = log pi(y|x) - log pi_ref(y|x), without beta, for SPA-style self-annotation.

    pi is `reward.model` (the policy; required) and pi_ref `reward.reference` (M0 when unset). log pi(y|x) sums the
    answer's token log-probabilities after the chat prompt, tokenised as TRL's preference trainers do (the
    template's end-of-turn included). Both models must share the policy's tokenizer.
    """

    def __init__(self, cfg: RewardConfig, m0_path: str, system_prompt: str | None = None):
        if not cfg.model:
            raise ModelError("reward=implicit needs reward.model=<the policy>; reward.reference defaults to M0")
        self.cfg = cfg
        self.system_prompt = system_prompt
        self.tokenizer = load_tokenizer(cfg.model)
        self.policy = load_causal_lm(cfg.model, cfg.dtype, cfg.trust_remote_code)
        self.reference = load_causal_lm(cfg.reference or m0_path, cfg.dtype, cfg.trust_remote_code)
        prepack_linears(self.policy)
        prepack_linears(self.reference)

    def _encode(self, prompt: str, answer: str) -> tuple[list[int], int]:
        from trl.data_utils import maybe_apply_chat_template

        example = {"prompt": chat(prompt, self.system_prompt), "completion": [{"role": "assistant", "content": answer}]}
        texts = maybe_apply_chat_template(example, self.tokenizer)
        prompt_ids = self.tokenizer(texts["prompt"], add_special_tokens=False)["input_ids"]
        answer_ids = self.tokenizer(texts["completion"], add_special_tokens=False)["input_ids"]
        prompt_ids = prompt_ids[-(self.cfg.max_length // 2) :]
        return (prompt_ids + answer_ids)[: self.cfg.max_length], len(prompt_ids)

    @torch.inference_mode()
    def score(self, prompts: list[str], answers: list[str]) -> list[float]:
        encoded = [self._encode(p, a) for p, a in zip(prompts, answers, strict=True)]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
        scores = [0.0] * len(encoded)
        for start in tqdm(range(0, len(order), self.cfg.batch_size), desc="implicit", leave=False):
            batch = order[start : start + self.cfg.batch_size]
            ids, mask = right_padded([encoded[i][0] for i in batch], self.tokenizer.pad_token_id)
            starts = [encoded[i][1] for i in batch]
            policy = answer_logps(self.policy, ids, mask, starts)[0]
            diff = policy - answer_logps(self.reference, ids, mask, starts)[0]
            for i, value in zip(batch, diff.tolist(), strict=True):
                scores[i] = value
        return scores


def check_reward(cfg: RewardConfig, m0_path: str | None = None) -> None:
    """Preflight, before any generation: raise (ModelError / JudgeError, both RuntimeError) when the reward's
    model, endpoint or key cannot be had, with what to set. Loads no weights. Checks that need M0 are skipped
    when `m0_path` is None (e.g. M0 not converted yet)."""
    if cfg.name not in REWARDS:
        raise ValueError(f"reward={cfg.name!r} is not available; available rewards: {sorted(REWARDS)}")
    if cfg.name == "self_judge" and cfg.model:
        check_loadable(cfg.model, "reward.model", cfg.trust_remote_code)
    elif cfg.name == "judge":
        judge = as_judge_config(cfg.judge)
        default = m0_path if judge.backend == "local" else None
        if judge.backend != "local" or judge.model or m0_path:
            make_judge_client(judge, default, "reward.judge").check_reachable()
    elif cfg.name == "pairrm":
        _check_pairrm(cfg.model or "llm-blender/PairRM-hf")
    elif cfg.name == "armorm":
        _check_sequence_rm(cfg.model or "RLHFlow/ArmoRM-Llama3-8B-v0.1", cfg.trust_remote_code)
    elif cfg.name == "implicit":
        if cfg.model:
            check_loadable(cfg.model, "reward.model", cfg.trust_remote_code)
        if cfg.reference:
            check_loadable(cfg.reference, "reward.reference", cfg.trust_remote_code)
