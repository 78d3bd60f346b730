"""oneDNN-prepacked linear layers for frozen CPU models: the same numbers (to float rounding), the same state dict,
the same greedy texts; the GQA decode fold; the KV cache layer written in place."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from synpo.inference import GQA_DECODE, BufferedLayer, PackedLinear, fold_gqa_decode, prepack_linears
from synpo.models import load_causal_lm, load_tokenizer


def test_a_packed_linear_computes_and_saves_what_the_linear_did():
    torch.manual_seed(0)
    linear = torch.nn.Linear(48, 96)
    x = torch.randn(3, 5, 48)
    packed = PackedLinear(linear, batch_hint=16)
    assert torch.allclose(packed(x), linear(x), atol=1e-5)
    assert packed(x[0, :1]).shape == (1, 96)  # any number of rows, not only the hint
    state, original = packed.state_dict(), linear.state_dict()
    assert state.keys() == original.keys() and all(torch.equal(state[k], original[k]) for k in original)


def test_prepacking_a_model_keeps_its_logits_and_greedy_text(tiny_model):
    tokenizer, model = load_tokenizer(str(tiny_model)), load_causal_lm(str(tiny_model))
    ids = torch.tensor([tokenizer("Name three rivers of Europe.")["input_ids"]])
    with torch.inference_mode():
        logits = model(ids).logits
        text = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    linears = sum(type(m) is torch.nn.Linear for m in model.modules())

    assert prepack_linears(model) == linears > 0
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    with torch.inference_mode():
        assert torch.allclose(model(ids).logits, logits, atol=1e-4)
        assert torch.equal(
            model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id), text
        )


def test_a_half_precision_model_is_left_as_it_is(tiny_model):
    model = load_causal_lm(str(tiny_model), "float16")
    assert prepack_linears(model) == 0
    assert any(type(m) is torch.nn.Linear for m in model.modules())


def test_folding_gqa_for_decoding_keeps_the_greedy_texts_of_a_left_padded_batch(tiny_model):
    tokenizer, model = load_tokenizer(str(tiny_model)), load_causal_lm(str(tiny_model))
    tokenizer.padding_side = "left"
    batch = tokenizer(["Hi", "Name three rivers of Europe and their lengths."], return_tensors="pt", padding=True)
    settings = {"max_new_tokens": 12, "do_sample": False, "pad_token_id": tokenizer.pad_token_id}
    with torch.inference_mode():
        expected = model.generate(**batch, **settings)
        assert fold_gqa_decode(model, force=True)
        assert model.config._attn_implementation == GQA_DECODE and model.config.num_key_value_heads > 1
        assert torch.equal(model.generate(**batch, **settings), expected)


def test_a_buffered_cache_layer_holds_what_a_dynamic_layer_holds_through_updates_crops_and_reorders():
    torch.manual_seed(0)
    buffered, dynamic = BufferedLayer(headroom=2), DynamicLayer()
    steps = [torch.randn(3, 2, n, 4) for n in (5, 1, 1, 1, 1)]  # a prefill, then past the headroom

    def both(action):
        for layer in (buffered, dynamic):
            action(layer)
        assert torch.equal(buffered.keys, dynamic.keys) and torch.equal(buffered.values, dynamic.values)
        assert buffered.get_seq_length() == dynamic.get_seq_length()

    for states in steps:
        both(lambda layer, s=states: layer.update(s, -s))
    assert buffered.keys.data_ptr() == buffered.buffers[0].data_ptr()  # a view, not a copy
    both(lambda layer: layer.crop(-2))
    both(lambda layer: layer.update(steps[1], steps[1]))
    both(lambda layer: layer.batch_select_indices(torch.tensor([2, 0])))
    both(lambda layer: layer.update(steps[1][:2], steps[1][:2]))
    both(lambda layer: layer.batch_repeat_interleave(2))
    both(lambda layer: layer.update(steps[2].repeat(2, 1, 1, 1)[:4], steps[2].repeat(2, 1, 1, 1)[:4]))
