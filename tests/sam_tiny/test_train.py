"""The training script: deterministic with a seed, logs progress, records provenance, and
chains a second phase onto the first (as `make sam-tiny-weights` does)."""

import hashlib
import json

import pytest
import torch

from sam_tiny.train import main

TINY_RUN = ["--steps", "2", "--images", "1", "--prompts", "2", "--log-every", "1",
            "--threads", "1"]


def same_weights(a, b) -> bool:
    """Tensor by tensor (the files' bytes differ: torch.save names the archive after the file)."""
    first, second = (torch.load(path, weights_only=True) for path in (a, b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_same_seed_gives_the_same_weights_and_the_provenance_records_them(tmp_path, capsys):
    first, second = tmp_path / "first.pth", tmp_path / "second.pth"
    main(TINY_RUN + ["--out", str(first)])
    main(TINY_RUN + ["--out", str(second)])
    assert same_weights(first, second)

    events = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert events == ["train_start", "train_step", "train_step", "saved"] * 2
    provenance = json.loads(first.with_suffix(".json").read_text())
    assert provenance["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert provenance["steps"] == 2 and provenance["seed"] == 0
    assert 0.0 <= provenance["held_out_point_miou"] <= 1.0


def test_a_second_phase_starts_from_the_first_and_keeps_its_provenance(tmp_path):
    phase1, phase2 = tmp_path / "phase1.pth", tmp_path / "phase2.pth"
    main(TINY_RUN + ["--out", str(phase1)])
    # At learning rate 0 nothing moves: phase 2's weights are phase 1's only if it loaded them.
    main(TINY_RUN + ["--init-checkpoint", str(phase1), "--seed", "1", "--lr", "0",
                     "--out", str(phase2)])
    assert same_weights(phase1, phase2)
    provenance = json.loads(phase2.with_suffix(".json").read_text())
    assert provenance["previous_phase"] == json.loads(phase1.with_suffix(".json").read_text())
    assert provenance["seed"] == 1
