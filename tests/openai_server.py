"""A small OpenAI-compatible chat-completions server around a transformers model, for the tests.

`transformers serve` ignores `logprobs`; this one returns, as the OpenAI API does, each written token's
log-probability and its `top_logprobs` (the model's unscaled distribution, whatever the temperature: the
server decodes greedily). Runs in a thread of the test process on 127.0.0.1; every request is recorded.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers with JSON (the test servers' shared part)."""

    def log_message(self, *args):
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ChatServer:
    def __init__(self, model_path: str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
        self.model_name = str(model_path)
        self.posts: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(JSONHandler):
            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.posts.append(request)
                self._send(200, {"object": "chat.completion", "choices": [server.choice(request)]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def choice(self, request: dict) -> dict:
        """One greedy completion of `request["messages"]`, with per-token log-probabilities when asked."""
        ids = self.tokenizer.apply_chat_template(request["messages"], add_generation_prompt=True, tokenize=True)
        ids = torch.tensor([ids["input_ids"] if hasattr(ids, "keys") else ids])
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=request.get("max_tokens") or 16,
                do_sample=False,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        written = out.sequences[0, ids.shape[1] :].tolist()
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": self.tokenizer.decode(written, skip_special_tokens=True)},
            "finish_reason": "length",
            "logprobs": None,
        }
        if request.get("logprobs"):
            k = request.get("top_logprobs") or 0
            content = []
            for token, logits in zip(written, out.logits, strict=False):
                logprobs = torch.log_softmax(logits[0].float(), dim=-1)
                top = torch.topk(logprobs, k) if k else None
                content.append(
                    {
                        "token": self.tokenizer.decode([token]),
                        "logprob": logprobs[token].item(),
                        "top_logprobs": []
                        if top is None
                        else [
                            {"token": self.tokenizer.decode([i]), "logprob": v}
                            for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
                        ],
                    }
                )
            choice["logprobs"] = {"content": content}
        return choice

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
