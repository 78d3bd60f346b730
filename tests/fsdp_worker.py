"""One process of the FSDP smoke test (tests/test_distributed.py), started twice by torchrun: torch's own
`fully_shard` (FSDP2) over gloo on CPU, each decoder layer a unit, then the root; prints rank 0's losses as JSON."""

from __future__ import annotations

import json

import torch
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return LlamaForCausalLM(config)


def losses(model, steps: int = 3) -> list[float]:
    """The same batch on every rank, so a correct sharded step is exactly one process's step."""
    ids = torch.arange(48).reshape(2, 24) % 64
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    out = []
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        out.append(loss.item())
    return out


def main() -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    model = tiny_llama()
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    sharded = type(next(model.parameters())).__name__
    result = losses(model)
    if dist.get_rank() == 0:
        print(json.dumps({"losses": result, "parameter_type": sharded}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
