"""PRECISION resolution, compile fallback and fp32 positional encodings. Real torch
and segment_anything; only what cannot run here (a GPU) is replaced, by functions
that raise or answer as the real ones do."""

import numpy as np
import pytest
import torch

from app.services.engine.precision import (Bf16Support, CompiledOrEager, bf16_support,
                                           choose_precision)
from app.services.engine.runtime import SamRuntime
from app.services.engine.precision import PrecisionChoice
from app.services.model.registry import build_sam_tiny

CPU = torch.device("cpu")


def test_fast_falls_back_to_exact_without_native_bf16():
    choice = choose_precision("fast", CPU, "vit_b", support=lambda d: Bf16Support(
        False, False, "cpu has none of amx_bf16, avx512_bf16"))
    assert choice.mode == "exact"
    assert "amx_bf16" in choice.fallback_reason


def test_fast_is_used_where_bf16_is_native():
    choice = choose_precision("fast", CPU, "vit_b", support=lambda d: Bf16Support(True, False, "x"))
    assert (choice.mode, choice.fallback_reason) == ("fast", None)


def test_auto_uses_exact_where_fast_agreement_was_not_measured():
    choice = choose_precision("auto", CPU, "vit_b", support=lambda d: Bf16Support(True, False, "x"))
    assert choice.mode == "exact"
    assert "not measured" in choice.fallback_reason
    assert choice.reason.startswith("PRECISION=auto; ") and "not measured" in choice.reason


def test_auto_uses_fast_where_agreement_was_measured_and_says_so():
    choice = choose_precision("auto", CPU, "vit_b", support=lambda d: Bf16Support(
        True, True, "cpu flags: avx512_bf16"))
    assert choice.mode == "fast"
    assert choice.reason == ("PRECISION=auto; fast's gain and agreement are measured for "
                             "vit_b on cpu with cpu flags: avx512_bf16")


@pytest.mark.parametrize(("flags", "model", "native", "auto_mode"), [
    ("fpu avx2", "vit_b", False, "exact"),
    ("avx512f avx512_bf16", "vit_b", True, "fast"),  # measured to pay on AMD Zen 4
    ("avx512f avx512_bf16", "sam_tiny", True, "exact"),  # not measured to pay there
    ("avx512_bf16 amx_bf16 amx_tile", "sam_tiny", True, "fast")])
def test_auto_picks_fast_on_amx_cpus_and_measured_models_on_avx512_bf16(
        monkeypatch, flags, model, native, auto_mode):
    monkeypatch.setattr("app.services.engine.precision.cpu_flags", flags.split)
    assert bf16_support(CPU).native is native
    assert choose_precision("auto", CPU, model).mode == auto_mode


@pytest.mark.parametrize(("capability", "native"), [((7, 5), False), ((8, 0), True)])
def test_cuda_bf16_counts_only_when_not_emulated(monkeypatch, capability, native):
    # torch answers True for emulated bf16 unless including_emulation=False is passed.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation or native)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert bf16_support(torch.device("cuda")).native is native


def test_compile_failure_runs_eagerly_from_then_on():
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C compiler")

    part = CompiledOrEager(lambda x: x * 2, "double", enabled=False)
    part.compiled = torch.compile(part.fn, backend=broken_backend)

    assert part(torch.ones(2)).tolist() == [2.0, 2.0]
    assert not part.is_compiled and "no C compiler" in part.failure


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory"),
                                   RuntimeError("shape mismatch")])
def test_errors_of_the_computation_propagate_and_keep_the_compiled_code(error):
    def fails(x):
        raise error

    part = CompiledOrEager(lambda x: x, "part", enabled=False)
    part.compiled = fails

    with pytest.raises(type(error)):
        part(torch.ones(1))
    assert part.is_compiled


def test_fast_keeps_positional_encodings_in_fp32():
    # A prompted cut-out decodes under bf16 autocast: its first call computes the
    # image's positional encoding there, which must stay fp32 all the same.
    torch.manual_seed(0)
    sam = build_sam_tiny().eval()
    runtime = SamRuntime(sam, PrecisionChoice("fast"), compile_model=False, batch_size=4)
    pe_layer = sam.prompt_encoder.pe_layer
    dtypes = []
    encode = pe_layer._pe_encoding
    pe_layer._pe_encoding = lambda coords: dtypes.append(encode(coords).dtype) or encode(coords)

    embedding, _ = runtime.image_embedding(np.zeros((64, 64, 3), np.uint8))
    point = (torch.tensor([[[10.0, 20.0]]]), torch.ones(1, 1, dtype=torch.int))
    runtime.predict(embedding, point, None, multimask=True)

    assert len(dtypes) == 2 and set(dtypes) == {torch.float32}
