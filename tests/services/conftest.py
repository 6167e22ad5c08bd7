"""Fixtures shared by the service tests of several packages."""

import pytest


@pytest.fixture(scope="session")
def sam2_tiny_meta(tmp_path_factory):
    """Meta's SAM 2.1 model with the tiny trunk (seeded random weights, eval mode) and the
    same weights saved as Meta publishes them: built once for the weights and the
    oracle tests alike. Skips where the test-only oracle is not installed."""
    pytest.importorskip("sam2", reason="the test-only oracle (make install-dev installs it)")
    from tests.sam2_oracle import meta_model, save_meta_checkpoint

    model = meta_model(tiny_trunk=True, seed=0)
    return model, save_meta_checkpoint(model, tmp_path_factory.mktemp("sam2") / "tiny.pt")
