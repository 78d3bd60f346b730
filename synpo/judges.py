"""One chat-completion client for every LLM judge: the `judge` reward and the evaluation suites.

`local` runs a transformers model through `synpo.generation`; `openai` POSTs to any OpenAI-compatible
`{base_url}/chat/completions` (GPT-4-Turbo, vLLM, `transformers serve`, ...). Both share a JSONL cache keyed by
(messages, settings), so a rerun pays nothing twice, and a request budget, so a typo cannot spend a fortune.
`check_reachable()` fails before any generation when the endpoint, the key or the model is missing.
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

from synpo.config import GenerationConfig, JudgeConfig

log = logging.getLogger(__name__)

# Worth retrying: rate limits and server-side failures; anything else (400, 401, 404) will not get better.
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class JudgeError(RuntimeError):
    """A judge that cannot be used as configured; the message says what to set."""


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
        self._lock = threading.Lock()
        if cfg.cache_file and Path(cfg.cache_file).is_file():
            with open(cfg.cache_file) as f:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        self._cache[row["key"]] = row["completion"]

    def check_reachable(self) -> None:
        """Raise JudgeError when the judge cannot answer; loads no weights and sends no completion."""

    def _complete(self, todo: dict[str, list[dict]]) -> None:
        """Answer {key: messages}, storing each completion as soon as it arrives: a crash loses none paid for."""
        raise NotImplementedError

    def _key(self, messages: list[dict]) -> str:
        settings = {
            "backend": self.cfg.backend,
            "model": self.model,
            "max_new_tokens": self.cfg.max_new_tokens,
            "temperature": self.cfg.temperature,
            "verdict_prefill": self.cfg.verdict_prefill,
        }
        blob = json.dumps({"messages": messages, "settings": settings}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def complete(self, conversations: list[list[dict]]) -> list[str]:
        keys = [self._key(c) for c in conversations]
        todo = {k: c for k, c in zip(keys, conversations, strict=True) if k not in self._cache}
        if self.cfg.max_requests is not None and self.requests + len(todo) > self.cfg.max_requests:
            raise JudgeError(
                f"{self.name}.max_requests={self.cfg.max_requests}: {len(todo)} more completions are needed and "
                f"{self.requests} were already requested; raise the budget (or null for none) to go on"
            )
        if todo:
            log.info("%s: %d completions (%d cached) from %s", self.name, len(todo), len(keys) - len(todo), self.model)
            self.requests += len(todo)
            self._complete(todo)
        return [self._cache[k] for k in keys]

    def _store(self, key: str, completion: str) -> None:
        with self._lock:
            self._cache[key] = completion
            if self.cfg.cache_file:
                Path(self.cfg.cache_file).parent.mkdir(parents=True, exist_ok=True)
                with open(self.cfg.cache_file, "a") as f:
                    f.write(json.dumps({"key": key, "completion": completion}, ensure_ascii=False) + "\n")


class LocalJudge(JudgeClient):
    """A transformers model, loaded on the first completion that the cache cannot answer."""

    def __init__(self, cfg: JudgeConfig, model: str, name: str = "judge"):
        super().__init__(cfg, model, name)
        self._generator = None

    def check_reachable(self) -> None:
        from synpo.models import ModelError, check_loadable

        try:
            check_loadable(self.model, f"{self.name}.model")
        except ModelError as e:
            raise JudgeError(str(e)) from e

    def _complete(self, todo: dict[str, list[dict]]) -> None:
        from synpo.generation import Sampling, make_generator

        if self._generator is None:
            gen_cfg = GenerationConfig(temperature=self.cfg.temperature, batch_size=self.cfg.batch_size)
            self._generator = make_generator(self.model, gen_cfg)
        sampling = Sampling(
            max_new_tokens=self.cfg.max_new_tokens,
            temperature=self.cfg.temperature,
            prefill=self.cfg.verdict_prefill,
        )
        keys = list(todo)
        for start in range(0, len(keys), self.cfg.batch_size):
            chunk = keys[start : start + self.cfg.batch_size]
            outputs = self._generator.generate([todo[k] for k in chunk], sampling, desc=self.name)
            for key, out in zip(chunk, outputs, strict=True):
                self._store(key, out[0])


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
        headers = self._headers()
        with ThreadPoolExecutor(max_workers=max(1, self.cfg.batch_size)) as pool:
            list(pool.map(lambda item: self._store(item[0], self._post(item[1], headers)), todo.items()))

    def _post(self, messages: list[dict], headers: dict) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "max_tokens": self.cfg.max_new_tokens,
                "temperature": self.cfg.temperature,
            }
        ).encode()
        url = f"{self.cfg.base_url}/chat/completions"
        attempt = 0
        while True:
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.cfg.timeout) as response:
                    return json.load(response)["choices"][0]["message"]["content"] or ""
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
    model = cfg.model or default_model
    if cfg.backend == "local":
        if not model:
            raise JudgeError(f"{name}.model is not set: give a local folder or hub id")
        return LocalJudge(cfg, model, name)
    if cfg.backend == "openai":
        if not cfg.base_url or not model:
            raise JudgeError(f"{name}.backend=openai needs {name}.base_url and {name}.model (the endpoint's name)")
        if cfg.verdict_prefill:
            raise JudgeError(
                f"{name}.verdict_prefill={cfg.verdict_prefill!r}: a chat-completions endpoint cannot be made to start "
                f"its answer; set {name}.verdict_prefill=''"
            )
        return OpenAIJudge(cfg, model, name)
    raise JudgeError(f"{name}.backend={cfg.backend!r}: expected 'local' or 'openai'")
