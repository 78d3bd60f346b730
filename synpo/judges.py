"""One chat-completion client for every LLM judge: the `judge` reward and the evaluation suites.

`local` runs a transformers model through `synpo.generation`; `openai` POSTs to any OpenAI-compatible
`{base_url}/chat/completions` (GPT-4-Turbo, vLLM, `transformers serve`, ...). Both share a JSONL cache keyed by
(messages, settings), so a rerun pays nothing twice, and a request budget, so a typo cannot spend a fortune.
`check_reachable()` fails before any generation when the endpoint, the key or the model is missing.

`choose` reads a verdict without generating (`verdict=logprobs`, local judges): of a format's fixed answers it
returns the one whose tokens the judge finds most probable after the prompt, the way AlpacaEval 2's weighted
annotator reads the log-probabilities of "m" and "M" instead of parsing text. A small model that never writes a
parsable verdict still ranks the answers it was asked to choose between.

`complete_logprobs` asks an endpoint for a completion with its `top_logprobs` (what a chat-completions endpoint
returns when `logprobs: true`) and returns each choice as sent, the form alpaca-eval's `logprob_parser` reads:
AlpacaEval 2's weighted annotator through any OpenAI-compatible server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from synpo.config import GenerationConfig, JudgeConfig, check_object
from synpo.errors import ConfigError, JudgeError

log = logging.getLogger(__name__)

# Worth retrying: rate limits and server-side failures; anything else (400, 401, 404) will not get better.
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


def as_judge_config(cfg: JudgeConfig | dict) -> JudgeConfig:
    """Stages rebuild configs from plain dicts, where the nested judge arrives as a dict."""
    return cfg if isinstance(cfg, JudgeConfig) else JudgeConfig(**cfg)


class JudgeClient:
    """`complete` returns one completion per conversation, from the cache where possible."""

    def __init__(self, cfg: JudgeConfig, model: str, name: str = "judge"):
        self.cfg = cfg
        self.model = model
        self.name = name
        self.requests = 0
        self._cache: dict[str, str] = {}
        # Answer log-probabilities of `option_logprobs`, in the same cache file (rows with a "logprobs" field),
        # and the choices of `complete_logprobs` (rows with a "choice" field).
        self._logprobs: dict[str, list[float]] = {}
        self._choices: dict[str, dict] = {}
        self._lock = threading.Lock()
        if cfg.cache_file and Path(cfg.cache_file).is_file():
            with open(cfg.cache_file) as f:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        self._cache[row["key"]] = row["completion"]
                        if "logprobs" in row:
                            self._logprobs[row["key"]] = row["logprobs"]
                        if "choice" in row:
                            self._choices[row["key"]] = row["choice"]

    def check_reachable(self) -> None:
        """Raise JudgeError when the judge cannot answer; loads no weights and sends no completion."""

    def close(self) -> None:
        """Release what the judge loaded (a local judge's model); it loads again if asked once more."""

    def _complete(self, todo: dict[str, list[dict]]) -> None:
        """Answer {key: messages}, storing each completion as soon as it arrives: a crash loses none paid for."""
        raise NotImplementedError

    def _score(self, todo: dict[str, list[dict]], options: list[str], prefill: str, suffix: str) -> None:
        """Store the log-probabilities of every option for {key: messages} (`verdict=logprobs`)."""
        raise JudgeError(f"{self.name}.backend={self.cfg.backend}: {self.name}.verdict=logprobs needs a local judge")

    def _complete_logprobs(self, todo: dict[str, list[dict]], sampling: dict) -> None:
        """Store the choice (with `logprobs.content[].top_logprobs`) of every {key: messages}."""
        raise JudgeError(
            f"{self.name}.backend={self.cfg.backend}: top log-probabilities come from an OpenAI-compatible endpoint "
            f"(backend=openai); a local judge scores the fixed answers instead (option_logprobs)"
        )

    def _key(self, messages: list[dict], scoring: dict | None = None) -> str:
        """A completion's key holds the sampling settings; a `scoring` (options, lead-in) key holds those instead,
        so the two modes never share an entry."""
        settings = {"backend": self.cfg.backend, "model": self.model}
        if scoring is None:
            settings.update(
                max_new_tokens=self.cfg.max_new_tokens,
                temperature=self.cfg.temperature,
                verdict_prefill=self.cfg.verdict_prefill,
            )
        else:
            settings.update(verdict="logprobs", **scoring)
        blob = json.dumps({"messages": messages, "settings": settings}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _reserve(self, todo: int, what: str) -> None:
        if self.cfg.max_requests is not None and self.requests + todo > self.cfg.max_requests:
            raise JudgeError(
                f"{self.name}.max_requests={self.cfg.max_requests}: {todo} more {what} are needed and "
                f"{self.requests} were already requested; raise the budget (or null for none) to go on"
            )
        self.requests += todo

    def complete(self, conversations: list[list[dict]]) -> list[str]:
        keys = [self._key(c) for c in conversations]
        todo = {k: c for k, c in zip(keys, conversations, strict=True) if k not in self._cache}
        self._reserve(len(todo), "completions")
        if todo:
            log.info("%s: %d completions (%d cached) from %s", self.name, len(todo), len(keys) - len(todo), self.model)
            self._complete(todo)
        return [self._cache[k] for k in keys]

    def option_logprobs(
        self, conversations: list[list[dict]], options: list[str], prefill: str = "", suffix: str = ""
    ) -> list[list[float]]:
        """For every conversation, the summed log-probabilities of the tokens of `option + suffix` when the judge's
        answer starts with `prefill`, for every option (in `options` order). `suffix` closes the verdict ("]]"),
        so that an option that begins another ("1" and "10") does not win for being shorter. Cached like
        completions, under keys of their own."""
        options = list(options)
        scoring = {"options": options, "prefill": prefill, "suffix": suffix}
        keys = [self._key(c, scoring) for c in conversations]
        todo = {k: c for k, c in zip(keys, conversations, strict=True) if k not in self._logprobs}
        self._reserve(len(todo), "verdicts")
        if todo:
            log.info("%s: %d verdicts (%d cached) from %s", self.name, len(todo), len(keys) - len(todo), self.model)
            self._score(todo, options, prefill, suffix)
        return [self._logprobs[k] for k in keys]

    def complete_logprobs(
        self, conversations: list[list[dict]], max_tokens: int, temperature: float, top_logprobs: int
    ) -> list[dict]:
        """One choice per conversation as the endpoint returned it (`message`, `logprobs.content[i].top_logprobs`),
        sampled with these settings (the suite's, e.g. AlpacaEval's annotator config) instead of the judge's.
        Cached, budgeted and retried like completions, under keys of their own."""
        sampling = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "logprobs": True,
            "top_logprobs": top_logprobs,
        }
        keys = [self._key(c, {"complete_logprobs": sampling}) for c in conversations]
        todo = {k: c for k, c in zip(keys, conversations, strict=True) if k not in self._choices}
        self._reserve(len(todo), "completions with log-probabilities")
        if todo:
            log.info(
                "%s: %d completions with log-probabilities (%d cached) from %s",
                self.name,
                len(todo),
                len(keys) - len(todo),
                self.model,
            )
            self._complete_logprobs(todo, sampling)
        return [self._choices[k] for k in keys]

    def choose(
        self, conversations: list[list[dict]], options: list[str], prefill: str = "", suffix: str = ""
    ) -> list[str]:
        """The most probable of `options` for each conversation (see `option_logprobs`)."""
        return [options[best(row)] for row in self.option_logprobs(conversations, options, prefill, suffix)]

    def _store(self, key: str, completion: str, logprobs: list[float] | None = None, choice: dict | None = None):
        row = {"key": key, "completion": completion}
        with self._lock:
            self._cache[key] = completion
            if logprobs is not None:
                self._logprobs[key] = row["logprobs"] = logprobs
            if choice is not None:
                self._choices[key] = row["choice"] = choice
            if self.cfg.cache_file:
                Path(self.cfg.cache_file).parent.mkdir(parents=True, exist_ok=True)
                with open(self.cfg.cache_file, "a") as f:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")


def best(logprobs: list[float]) -> int:
    """Index of the largest log-probability (the first on a tie)."""
    return max(range(len(logprobs)), key=logprobs.__getitem__)


def option_logprobs(model, prompts: list[list[int]], options: list[list[int]], pad_id: int) -> list[list[float]]:
    """Summed log-probabilities of each option's tokens after each prompt: [prompt][option].

    One forward reads the prompts (left-padded, so they all end in the same column) into a KV cache and gives
    the first token of every option; each option of more than one token then runs on that cache for all prompts
    at once (a few positions), and the cache is cut back to the prompts. A prompt is thus read once, not once
    per option: on a judge prompt of 500 tokens and options of 1-3 tokens, the options cost next to nothing.
    """
    import torch
    from transformers import DynamicCache

    from synpo.inference import left_padded
    from synpo.models import cache_kwarg

    cache = DynamicCache(config=model.config)
    with torch.inference_mode():
        ids, mask = left_padded(prompts, pad_id)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **cache_kwarg(model, cache),
        )
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        scores = torch.zeros(len(prompts), len(options))
        for k, option in enumerate(options):
            scores[:, k] = first[:, option[0]]
            if len(option) > 1:
                n = len(option) - 1
                rest = model(
                    input_ids=torch.tensor([option[:-1]] * len(prompts)),
                    attention_mask=torch.cat([mask, mask.new_ones(len(prompts), n)], dim=1),
                    position_ids=positions[:, -1:] + 1 + torch.arange(n),
                    use_cache=True,
                    **cache_kwarg(model, cache),
                )
                logps = torch.log_softmax(rest.logits.float(), dim=-1)
                targets = torch.tensor([option[1:]] * len(prompts))
                scores[:, k] += logps.gather(-1, targets[..., None])[..., 0].sum(-1)
                cache.crop(-n)  # back to the prompts (a negative count removes tokens in every version)
        return scores.tolist()


class LocalJudge(JudgeClient):
    """A transformers model, loaded on the first completion that the cache cannot answer."""

    def __init__(self, cfg: JudgeConfig, model: str, name: str = "judge"):
        super().__init__(cfg, model, name)
        self._generator = None

    def check_reachable(self) -> None:
        from synpo.errors import ModelError
        from synpo.models import check_loadable

        try:
            check_loadable(self.model, f"{self.name}.model")
        except ModelError as e:
            raise JudgeError(str(e)) from e

    def close(self) -> None:
        if self._generator is not None:
            self._generator.close()
            self._generator = None

    def _load(self):
        from synpo.generation import make_generator

        if self._generator is None:
            gen_cfg = GenerationConfig(temperature=self.cfg.temperature, batch_size=self.cfg.batch_size)
            self._generator = make_generator(self.model, gen_cfg, self.cfg.dtype)
        return self._generator

    def _complete(self, todo: dict[str, list[dict]]) -> None:
        from synpo.generation import Sampling

        generator = self._load()
        sampling = Sampling(
            max_new_tokens=self.cfg.max_new_tokens,
            temperature=self.cfg.temperature,
            prefill=self.cfg.verdict_prefill,
        )
        keys = list(todo)
        for start in range(0, len(keys), self.cfg.batch_size):
            chunk = keys[start : start + self.cfg.batch_size]
            outputs = generator.generate([todo[k] for k in chunk], sampling, desc=self.name)
            for key, out in zip(chunk, outputs, strict=True):
                self._store(key, out[0])

    def _score(self, todo: dict[str, list[dict]], options: list[str], prefill: str, suffix: str) -> None:
        generator = self._load()
        tokenizer = generator.tokenizer
        # The option is tokenised on its own, as the model would write it after the lead-in it was given.
        option_ids = [tokenizer(o + suffix, add_special_tokens=False)["input_ids"] for o in options]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        keys = list(todo)
        for start in range(0, len(keys), self.cfg.batch_size):
            chunk = keys[start : start + self.cfg.batch_size]
            prompts = generator.encode([todo[k] for k in chunk], prefill)
            for key, row in zip(chunk, option_logprobs(generator.model, prompts, option_ids, pad), strict=True):
                self._store(key, options[best(row)], row)


class OpenAIJudge(JudgeClient):
    """An OpenAI-compatible chat-completions endpoint, with retries and exponential backoff."""

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.cfg.api_key_env:
            key = os.environ.get(self.cfg.api_key_env)
            if not key:
                raise JudgeError(
                    f"{self.name}: set {self.cfg.api_key_env} to the API key of {self.cfg.base_url} "
                    f"(or {self.name}.api_key_env=null for an endpoint that needs no key)"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def check_reachable(self) -> None:
        """The key is set and `{base_url}/models` answers; any HTTP answer but 401/403 counts as reachable."""
        headers = self._headers()
        request = urllib.request.Request(f"{self.cfg.base_url}/models", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=min(self.cfg.timeout, 10)):
                pass
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise JudgeError(f"{self.name}: {self.cfg.base_url} refused the key in ${self.cfg.api_key_env}") from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise JudgeError(
                f"{self.name}.base_url={self.cfg.base_url} is not reachable ({reason}); "
                f"start the server or set {self.name}.base_url"
            ) from e

    def _complete(self, todo: dict[str, list[dict]]) -> None:
        sampling = {"max_tokens": self.cfg.max_new_tokens, "temperature": self.cfg.temperature}
        self._post_all(todo, sampling, lambda key, choice: self._store(key, choice["message"]["content"] or ""))

    def _complete_logprobs(self, todo: dict[str, list[dict]], sampling: dict) -> None:
        def store(key: str, choice: dict) -> None:
            if not (choice.get("logprobs") or {}).get("content"):
                raise JudgeError(
                    f"{self.name}: {self.cfg.base_url} returned no logprobs.content for a request with logprobs=true "
                    f"(model {self.model}); this endpoint cannot serve a log-probability verdict"
                )
            self._store(key, choice["message"]["content"] or "", choice=choice)

        self._post_all(todo, sampling, store)

    def _post_all(self, todo: dict[str, list[dict]], sampling: dict, store) -> None:
        headers = self._headers()
        with ThreadPoolExecutor(max_workers=max(1, self.cfg.batch_size)) as pool:
            list(pool.map(lambda item: store(item[0], self._post(item[1], headers, sampling)), todo.items()))

    def _post(self, messages: list[dict], headers: dict, sampling: dict) -> dict:
        """The first choice of one chat completion, retried on rate limits and server errors."""
        body = json.dumps({"model": self.model, "messages": messages, **sampling}).encode()
        url = f"{self.cfg.base_url}/chat/completions"
        attempt = 0
        while True:
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.cfg.timeout) as response:
                    return json.load(response)["choices"][0]
            except urllib.error.HTTPError as e:
                if e.code not in RETRY_STATUS or attempt >= self.cfg.max_retries:
                    detail = e.read().decode(errors="replace")[:300]
                    raise JudgeError(f"{self.name}: {url} answered HTTP {e.code}: {detail}") from e
                error = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                if attempt >= self.cfg.max_retries:
                    raise JudgeError(f"{self.name}: {url} failed {attempt + 1} times: {e}") from e
                error = str(e)
            delay = self.cfg.retry_backoff * 2**attempt
            attempt += 1
            log.warning("%s: %s, retry %d/%d in %.1fs", self.name, error, attempt, self.cfg.max_retries, delay)
            time.sleep(delay)


def make_judge_client(cfg: JudgeConfig | dict, default_model: str | None = None, name: str = "judge") -> JudgeClient:
    """`name` is the config key the judge sits under (e.g. `reward.judge`), used in every error message."""
    cfg = as_judge_config(cfg)
    try:
        check_object(cfg, name)
    except ConfigError as e:
        raise JudgeError(str(e)) from None
    model = cfg.model or default_model
    if cfg.backend == "local":
        if not model:
            raise JudgeError(f"{name}.model is not set: give a local folder or hub id")
        return LocalJudge(cfg, model, name)
    if cfg.backend == "openai":
        if not cfg.base_url or not model:
            raise JudgeError(f"{name}.backend=openai needs {name}.base_url and {name}.model (the endpoint's name)")
        if cfg.verdict == "logprobs":
            raise JudgeError(
                f"{name}.verdict=logprobs: only a local judge scores given answers after a lead-in (an endpoint "
                f"returns the top log-probabilities of the tokens it samples, which only AlpacaEval's one-token "
                f"verdict reads: evaluation.alpaca_eval.verdict=logprobs); set {name}.verdict=generate or "
                f"{name}.backend=local"
            )
        if cfg.verdict_prefill:
            raise JudgeError(
                f"{name}.verdict_prefill={cfg.verdict_prefill!r}: a chat-completions endpoint cannot be made to start "
                f"its answer; set {name}.verdict_prefill=''"
            )
        return OpenAIJudge(cfg, model, name)
    raise JudgeError(f"{name}.backend={cfg.backend!r}: expected 'local' or 'openai'")
