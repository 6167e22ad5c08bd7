"""Compiled packages: which folder a start reads them from, what happens when a package
cannot be built or loaded, and one real build that a restart then loads. Real
torch.export, real AOTInductor and real files; vit_b's restart times are measured by
`bench.startup` (docs/performance.md, "Warm restart")."""

import os
import shutil

import pytest
import torch
from structlog.testing import capture_logs

from app.core.config import Settings
from app.services.engine.aot_package import PackagedPart, package_key
from app.services.engine.precision import CompiledOrEager
from app.services.model.manager import ModelManager


def test_package_key_changes_with_every_fact_torch_and_the_cpu_kind(monkeypatch):
    facts = ("vit_b", 375_059_467, 1_700_000_000_000_000_000, "exact", 64)
    key = package_key("cpu", *facts)
    assert package_key("cpu", *facts) == key
    for changed in range(len(facts)):
        other = list(facts)
        other[changed] = "changed"
        assert package_key("cpu", *other) != key
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    on_avx2 = package_key("cpu", *facts)
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert len({key, on_avx2, package_key("cpu", *facts)}) == 3


@pytest.fixture
def manager_for(tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))  # restored afterwards
    checkpoint = tmp_path / "sam_tiny.pth"
    shutil.copy(tiny_checkpoint, checkpoint)
    return lambda **settings: ModelManager(Settings(**{
        "DEFAULT_MODEL": "sam_tiny", "SAM_CHECKPOINT_PATH": checkpoint,
        "MODEL_CACHE_DIR": tmp_path, "COMPILE_MODEL": "on", "DEVICE": "cpu", **settings}))


def test_a_changed_checkpoint_or_batch_size_reads_another_package_folder(manager_for):
    manager = manager_for(PRECISION="exact")
    folder = manager.package_dir()
    assert folder.parent == manager.settings.MODEL_CACHE_DIR / "aot_packages"
    assert manager_for(PRECISION="exact").package_dir() == folder
    assert manager_for(PRECISION="exact", DECODE_BATCH_SIZE=16).package_dir() != folder
    stat = manager.checkpoint.stat()
    os.utime(manager.checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert manager.package_dir() != folder


def test_no_package_folder_without_compiling_and_one_per_precision(manager_for, monkeypatch):
    assert manager_for(COMPILE_MODEL="off").package_dir() is None
    monkeypatch.setattr("app.services.engine.precision.cpu_flags", lambda: ["avx512_bf16"])
    fast = manager_for(PRECISION="fast")
    assert fast.precision == "fast"
    assert fast.package_dir() not in (None, manager_for(PRECISION="exact").package_dir())


def _data_dependent(x: torch.Tensor) -> torch.Tensor:
    # A branch on a value: torch.export refuses it, eager and torch.compile run it.
    return x * 2 if x.sum() > 0 else x


def _part(folder) -> PackagedPart:
    return PackagedPart(CompiledOrEager(_data_dependent, "part", enabled=False),
                        torch.nn.Module(), folder)


def test_a_part_that_cannot_be_packaged_runs_without_one_and_says_why(tmp_path):
    part = _part(tmp_path)
    with capture_logs() as logs:
        assert part(torch.ones(2)).tolist() == [2.0, 2.0]
        assert part(torch.ones(2)).tolist() == [2.0, 2.0]
    failed = [e for e in logs if e["event"] == "aot_package_failed_using_compile"]
    assert len(failed) == 1 and failed[0]["part"] == "part"  # tried once, not per call
    # Nothing half-written; the failure is remembered, so a restart does not try again.
    assert [p.name for p in tmp_path.iterdir()] == ["part.failed"]
    restarted = _part(tmp_path)
    with capture_logs() as logs:
        assert restarted(torch.ones(2)).tolist() == [2.0, 2.0]
    assert logs == [] and "data-dependent branching" in restarted.failure


def test_an_unreadable_package_is_not_loaded_and_the_part_still_runs(tmp_path):
    (tmp_path / "part.pt2").write_bytes(b"PK\x03\x04 not a package")
    part = _part(tmp_path)
    with capture_logs() as logs:
        assert part.load() is False
        assert part(torch.ones(2)).tolist() == [2.0, 2.0]
    assert "aot_package_load_failed" in [e["event"] for e in logs]


class _TwoPrecisions(torch.nn.Module):
    """An fp32 layer and a bf16 one (what `exact` and `fast`'s encoder hold), so one
    build shows that both kinds of weights compile ahead of time and load."""

    def __init__(self) -> None:
        super().__init__()
        self.fp32 = torch.nn.Linear(8, 4)
        self.bf16 = torch.nn.Linear(8, 4).to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fp32(x) + self.bf16(x.to(torch.bfloat16)).float()


def _model_part(folder, model: torch.nn.Module) -> PackagedPart:
    return PackagedPart(CompiledOrEager(model, "layers", enabled=False), model, folder)


def test_a_built_package_serves_a_restart_without_rebuilding_and_only_its_shapes(
        tmp_path, monkeypatch):
    # One real ahead-of-time build (10-20 s: the one this file pays for), then a
    # "restart": a new part on the same folder loads the package and builds nothing.
    torch.manual_seed(0)
    model = _TwoPrecisions().eval()
    x = torch.randn(3, 8)
    with torch.inference_mode(), capture_logs() as logs:
        expected = model(x)
        assert torch.allclose(_model_part(tmp_path, model)(x), expected, atol=1e-2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.pt2"]  # no partial left
    # The minute-long build is announced, so a first start does not look hung.
    assert [e["event"] for e in logs if e["event"].startswith("aot_package_b")] == [
        "aot_package_building", "aot_package_built"]

    restarted = _model_part(tmp_path, model)
    monkeypatch.setattr(restarted, "_build", lambda args: pytest.fail("rebuilt on restart"))
    assert restarted.load() and restarted.is_compiled
    with torch.inference_mode():
        assert torch.allclose(restarted(x), expected, atol=1e-2)
        with torch.no_grad():
            model.bf16.weight.mul_(2)  # the package reads the model's own weights: no copy
        assert torch.allclose(restarted(x), model(x), atol=1e-2)
        assert not torch.allclose(model(x), expected, atol=1e-2)
        other = torch.randn(5, 8)  # a shape the package was not built for: the fallback
        assert torch.allclose(restarted(other), model(other), atol=1e-2)
