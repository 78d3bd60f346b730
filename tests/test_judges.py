"""The judge client and the `judge` reward against real local servers: a scripted `http.server` for retries,
budget, cache and verdict parsing, and `transformers serve` running a tiny model as an OpenAI-compatible API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from openai_server import JSONHandler

from synpo.config import JudgeConfig, RewardConfig
from synpo.errors import JudgeError
from synpo.judges import make_judge_client
from synpo.rewards import JUDGE_PAIRWISE_TEMPLATE, check_reward, make_reward, parse_verdict

KEY_ENV = "SYNPO_TEST_JUDGE_KEY"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedServer:
    """A real HTTP server: answers POSTs with the scripted statuses first, then 200 with `answer(prompt)`."""

    def __init__(self, statuses=(), answer=lambda prompt: "[[A]]"):
        self.statuses = list(statuses)
        self.answer = answer
        self.posts: list[dict] = []
        self.auth: list[str | None] = []
        server = self

        class Handler(JSONHandler):
            def do_GET(self):
                self._send(200, {"object": "list", "data": []})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.posts.append(request)
                server.auth.append(self.headers.get("Authorization"))
                if server.statuses:
                    self._send(server.statuses.pop(0), {"error": "scripted"})
                    return
                content = server.answer(request["messages"][-1]["content"])
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": content}}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def http_judge(url: str, **overrides) -> JudgeConfig:
    settings = {"backend": "openai", "base_url": url, "model": "judge-model", "api_key_env": KEY_ENV}
    return JudgeConfig(**{**settings, "retry_backoff": 0.01, "max_retries": 3, "timeout": 10, **overrides})


CONVERSATION = [[{"role": "user", "content": "Which is better?"}]]


def test_retries_server_errors_with_backoff_then_succeeds(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-secret")
    with ScriptedServer(statuses=[500, 429]) as server:
        client = make_judge_client(http_judge(server.url))
        start = time.monotonic()
        assert client.complete(CONVERSATION) == ["[[A]]"]
        assert len(server.posts) == 3
        assert time.monotonic() - start >= 0.01 + 0.02  # backoff doubled between attempts
        assert server.auth == ["Bearer sk-test-secret"] * 3
        assert server.posts[0]["model"] == "judge-model" and server.posts[0]["temperature"] == 0.0


def test_gives_up_after_max_retries_and_never_retries_client_errors(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    with ScriptedServer(statuses=[503] * 10) as server:
        with pytest.raises(JudgeError, match="HTTP 503"):
            make_judge_client(http_judge(server.url, max_retries=2)).complete(CONVERSATION)
        assert len(server.posts) == 3
    with ScriptedServer(statuses=[400]) as server:
        with pytest.raises(JudgeError, match="HTTP 400"):
            make_judge_client(http_judge(server.url)).complete(CONVERSATION)
        assert len(server.posts) == 1


def test_budget_is_checked_before_any_request_and_cache_hits_are_free(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "sk-test-secret")
    cache = tmp_path / "cache.jsonl"
    conversations = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
    with ScriptedServer() as server:
        with pytest.raises(JudgeError, match="max_requests=2"):
            make_judge_client(http_judge(server.url, max_requests=2, cache_file=str(cache))).complete(conversations)
        assert server.posts == []

        client = make_judge_client(http_judge(server.url, max_requests=3, cache_file=str(cache)))
        assert client.complete(conversations) == ["[[A]]"] * 3
        assert client.complete(conversations) == ["[[A]]"] * 3
        # A rerun (a new client on the same cache file) pays nothing, even with no budget left.
        rerun = make_judge_client(http_judge(server.url, max_requests=0, cache_file=str(cache)))
        assert rerun.complete(conversations) == ["[[A]]"] * 3
        assert len(server.posts) == 3
        # Other settings are other cache entries.
        with pytest.raises(JudgeError, match="max_requests=0"):
            make_judge_client(http_judge(server.url, max_requests=0, temperature=0.7, cache_file=str(cache))).complete(
                conversations
            )
    assert "sk-test-secret" not in cache.read_text()
    assert len(cache.read_text().splitlines()) == 3


def test_missing_key_and_unreachable_endpoint_fail_before_generation(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with ScriptedServer() as server:
        with pytest.raises(JudgeError, match=f"set {KEY_ENV}"):
            make_judge_client(http_judge(server.url)).check_reachable()
    monkeypatch.setenv(KEY_ENV, "k")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(JudgeError, match=r"reward\.judge\.base_url=.* is not reachable"):
        check_reward(RewardConfig(name="judge", judge=http_judge(dead)))
    with pytest.raises(JudgeError, match="needs reward.judge.base_url"):
        check_reward(RewardConfig(name="judge", judge=JudgeConfig(backend="openai", model="gpt-4-turbo")))


def test_parse_verdict():
    assert parse_verdict("A is longer, but B is right. [[B]]") == "B"
    assert parse_verdict("[[A]] at first, on reflection [[C]]") == "C"
    assert parse_verdict("Answer A is better.") is None


def _better_answer(prompt: str) -> str:
    """A judge that prefers the answer containing GOOD, wherever it is."""
    a = prompt.split("[The Start of Answer A]")[1].split("[The End of Answer A]")[0]
    return "A is correct. [[A]]" if "GOOD" in a else "B is correct. [[B]]"


def test_judge_reward_compares_in_both_orders_and_counts_unparsed(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    prompts, chosen, rejected = ["q1", "q2"], ["GOOD answer", "bad answer"], ["bad answer", "GOOD answer"]
    with ScriptedServer(answer=_better_answer) as server:
        # Stages rebuild the config from a dict, where the nested judge is a dict too.
        reward = make_reward(RewardConfig(name="judge", judge=asdict(http_judge(server.url))), "unused-m0")
        gaps = reward.gaps(prompts, chosen, rejected)
    assert [g["gap"] for g in gaps] == [0.5, -0.5]
    assert [g["unparsed"] for g in gaps] == [0, 0]
    # A judge that always says A has pure position bias: the two orders cancel.
    with ScriptedServer(answer=lambda prompt: "[[A]]") as server:
        reward = make_reward(RewardConfig(name="judge", judge=http_judge(server.url)), "unused-m0")
        assert [g["gap"] for g in reward.gaps(prompts, chosen, rejected)] == [0.0, 0.0]
    # Unparsable verdicts are counted and their pair is not scored, even when one order parsed.
    with ScriptedServer(answer=lambda prompt: "I cannot decide.") as server:
        reward = make_reward(RewardConfig(name="judge", judge=http_judge(server.url)), "unused-m0")
        gaps = reward.gaps(prompts, chosen, rejected)
    assert gaps[0] == {"gap": None, "verdicts": [None, None], "unparsed": 2}
    with ScriptedServer(answer=lambda prompt: "[[A]]" if prompt.index("GOOD") < prompt.index("bad") else "?") as server:
        reward = make_reward(RewardConfig(name="judge", judge=http_judge(server.url)), "unused-m0")
        gaps = reward.gaps(prompts, chosen, rejected)
    assert [(g["gap"], g["unparsed"]) for g in gaps] == [(None, 1), (None, 1)]


def test_local_judge_is_m0_by_default(tiny_model, tmp_path):
    cfg = RewardConfig(name="judge", judge=JudgeConfig(max_new_tokens=4, cache_file=str(tmp_path / "c.jsonl")))
    check_reward(cfg, str(tiny_model))
    reward = make_reward(cfg, str(tiny_model))
    assert reward.client.model == str(tiny_model)
    gaps = reward.gaps(["What is 2 + 2?"], ["4"], ["5"])
    # A random 2-layer model writes no verdict: nothing is scored as a preference.
    assert gaps[0]["unparsed"] == 2 and gaps[0]["gap"] is None
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 2


def test_local_judge_starts_its_answer_with_the_verdict_prefill(tiny_model):
    messages = [[{"role": "user", "content": "Which is better? Answer [[A]] or [[B]]."}]]
    plain = make_judge_client(JudgeConfig(max_new_tokens=3), str(tiny_model))
    prefilled = make_judge_client(JudgeConfig(max_new_tokens=3, verdict_prefill="[["), str(tiny_model))
    assert prefilled.complete(messages)[0].startswith("[[")
    # The prefill is part of the cache key: the two judges never share completions.
    assert plain._key(messages[0]) != prefilled._key(messages[0])


def test_local_judge_loads_its_model_in_judge_dtype(tiny_model):
    import torch

    judge = make_judge_client(JudgeConfig(dtype="bfloat16"), str(tiny_model))
    messages = [[{"role": "user", "content": "Is 2 + 2 = 4? Answer Yes or No."}]]
    assert len(judge.option_logprobs(messages, ["Yes", "No"])[0]) == 2
    assert next(judge._generator.model.parameters()).dtype == torch.bfloat16
    judge.close()


def test_openai_judge_refuses_a_verdict_prefill():
    with pytest.raises(JudgeError, match="reward.judge.verdict_prefill"):
        make_judge_client(
            JudgeConfig(backend="openai", base_url="http://x", model="m", verdict_prefill="[["), name="reward.judge"
        )


def _logprob_by_hand(model, tokenizer, conversation: list[dict], prefill: str, text: str) -> float:
    """log P(text | chat prompt + prefill), one unpadded sequence, token by token."""
    import torch

    from synpo.generation import chat_prompt_ids

    prompt = chat_prompt_ids(tokenizer, [conversation], prefill)[0]
    answer = tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + answer])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return sum(float(logps[len(prompt) + i - 1, t]) for i, t in enumerate(answer))


def test_choose_returns_the_option_with_the_highest_sequence_logprob(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM

    from synpo.models import load_tokenizer

    # Prompts of different lengths share a batch (padding), options of one to four tokens, one the start of another.
    conversations = [
        [{"role": "user", "content": "Rate it."}],
        [{"role": "system", "content": "You judge."}, {"role": "user", "content": "Rate this long answer " * 9}],
        [{"role": "user", "content": "Which is better, A or B?"}],
    ]
    options = ["1", "10", "A>>B", "B=A"]
    cfg = JudgeConfig(verdict="logprobs", batch_size=2, cache_file=str(tmp_path / "cache.jsonl"))
    client = make_judge_client(cfg, str(tiny_model))
    got = client.option_logprobs(conversations, options, prefill="[[", suffix="]]")
    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model).eval(), load_tokenizer(tiny_model)
    by_hand = [[_logprob_by_hand(model, tokenizer, c, "[[", o + "]]") for o in options] for c in conversations]
    assert sum(got, []) == pytest.approx(sum(by_hand, []), abs=1e-4)
    expected = [options[max(range(len(options)), key=row.__getitem__)] for row in by_hand]
    assert client.choose(conversations, options, prefill="[[", suffix="]]") == expected
    assert client.requests == 3  # the second call was answered from the cache

    # A rerun reads the cache file: no budget, no model.
    rerun = make_judge_client(
        JudgeConfig(verdict="logprobs", max_requests=0, cache_file=cfg.cache_file), str(tiny_model)
    )
    assert rerun.option_logprobs(conversations, options, prefill="[[", suffix="]]") == got


def test_cache_keys_differ_between_verdict_modes_options_and_lead_ins(tiny_model):
    client = make_judge_client(JudgeConfig(), str(tiny_model))
    messages = CONVERSATION[0]
    generate = client._key(messages)
    scored = client._key(messages, {"options": ["A", "B"], "prefill": "[[", "suffix": "]]"})
    assert len({generate, scored}) == 2
    assert scored != client._key(messages, {"options": ["A", "B", "C"], "prefill": "[[", "suffix": "]]"})
    assert scored != client._key(messages, {"options": ["A", "B"], "prefill": "", "suffix": "]]"})


def test_local_judge_reward_in_logprobs_mode_scores_every_pair(tiny_model):
    cfg = RewardConfig(name="judge", judge=JudgeConfig(verdict="logprobs", verdict_prefill="[["))
    gaps = make_reward(cfg, str(tiny_model)).gaps(["What is 2 + 2?", "Name a colour."], ["4", "Blue."], ["5", "Ten."])
    assert all(g["unparsed"] == 0 and g["gap"] is not None for g in gaps)
    assert all(set(g["verdicts"]) <= {"A", "B", "C"} for g in gaps)


def test_logprobs_judge_gap_is_the_probability_weighted_win_over_both_orders(tiny_model):
    reward = make_reward(RewardConfig(name="judge", judge=JudgeConfig(verdict="logprobs")), str(tiny_model))
    gaps = reward.gaps(["What is 2 + 2?"], ["4"], ["5"])
    # By hand from the same log-probabilities: P(A) + P(C)/2 with chosen first, P(B) + P(C)/2 with chosen second.
    conversations = [
        [{"role": "user", "content": JUDGE_PAIRWISE_TEMPLATE.format(question="What is 2 + 2?", answer_a=a, answer_b=b)}]
        for a, b in (("4", "5"), ("5", "4"))
    ]
    rows = reward.client.option_logprobs(conversations, ["A", "B", "C"], prefill="[[", suffix="]]")
    (a1, b1, c1), (a2, b2, c2) = (torch.tensor(r).softmax(-1).tolist() for r in rows)
    assert gaps[0]["gap"] == pytest.approx(((a1 + c1 / 2) + (b2 + c2 / 2)) / 2 - 0.5)
    assert -0.5 <= gaps[0]["gap"] <= 0.5


def test_logprobs_verdict_needs_a_local_judge_and_a_known_mode():
    with pytest.raises(JudgeError, match=r"evaluation\.judge\.verdict=logprobs"):
        make_judge_client(
            JudgeConfig(backend="openai", base_url="http://x", model="m", verdict="logprobs"), name="evaluation.judge"
        )
    with pytest.raises(JudgeError, match=r"reward\.judge\.verdict='logprob'"):
        make_judge_client(JudgeConfig(verdict="logprob"), "m", name="reward.judge")


@pytest.fixture(scope="module")
def served_model(tiny_model, tmp_path_factory):
    """`transformers serve` (an OpenAI-compatible server) on a free loopback port, stopped after the tests."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    command = [str(Path(sys.executable).parent / "transformers"), "serve", str(tiny_model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"transformers serve did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(tiny_model)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_judge_reward_against_transformers_serve(served_model):
    url, model = served_model
    judge = JudgeConfig(backend="openai", base_url=url, model=model, api_key_env=None, max_new_tokens=6)
    cfg = RewardConfig(name="judge", threshold=0.25, judge=judge)
    check_reward(cfg)
    client = make_judge_client(judge)
    texts = client.complete([[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "Say bye."}]])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    gaps = make_reward(cfg, "unused-m0").gaps(["What is 2 + 2?"], ["4"], ["5"])
    assert gaps[0]["unparsed"] == 2 and gaps[0]["gap"] is None


def test_log_probability_completions_are_budgeted_retried_and_refused_without_logprobs(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, "k")
    with ScriptedServer(statuses=[503], answer=lambda prompt: "M") as server:
        client = make_judge_client(http_judge(server.url, max_requests=0))
        with pytest.raises(JudgeError, match="max_requests=0: 1 more completions with log-probabilities"):
            client.complete_logprobs(CONVERSATION, max_tokens=1, temperature=1.0, top_logprobs=5)
        assert server.posts == []
        client = make_judge_client(http_judge(server.url, cache_file=str(tmp_path / "cache.jsonl")))
        # A 503 is retried; the answer then has no log-probabilities: a clear error, nothing cached.
        with pytest.raises(JudgeError, match="returned no logprobs.content"):
            client.complete_logprobs(CONVERSATION, max_tokens=1, temperature=1.0, top_logprobs=5)
        assert len(server.posts) == 2
        assert {k: server.posts[1][k] for k in ("max_tokens", "temperature", "logprobs", "top_logprobs")} == {
            "max_tokens": 1,
            "temperature": 1.0,
            "logprobs": True,
            "top_logprobs": 5,
        }
        assert not (tmp_path / "cache.jsonl").exists()


def test_transformers_serve_returns_no_logprobs_and_says_so(served_model):
    url, model = served_model
    client = make_judge_client(JudgeConfig(backend="openai", base_url=url, model=model, api_key_env=None))
    with pytest.raises(JudgeError, match="returned no logprobs.content"):
        client.complete_logprobs(
            [[{"role": "user", "content": "m or M?"}]], max_tokens=1, temperature=1.0, top_logprobs=5
        )
