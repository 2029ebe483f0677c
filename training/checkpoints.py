"""Checkpoints of a run in progress, so an interrupted run resumes where it stopped.

A checkpoint (``out_dir/checkpoints/step-N``) holds the weights, optimiser, scheduler, RNG states
and the position in the epoch (``state.json``). It is written to a staging folder and renamed into
place, so it is complete or absent; only the newest is kept. The finished model replaces them all
(training.model_dir).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

CHECKPOINTS = "checkpoints"


def latest_checkpoint(out_dir: Path) -> Path | None:
    folder = Path(out_dir) / CHECKPOINTS
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("step-*") if (p / "state.json").is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)


def save_checkpoint(out_dir: Path, model, optimizer, scheduler, state: dict) -> Path:
    folder = out_dir / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".step-", dir=folder))
    torch.save(model.state_dict(), staging / "model.pt")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
               staging / "trainer.pt")
    (staging / "state.json").write_text(json.dumps(state))
    target = folder / f"step-{state['step']}"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # a checkpoint is complete or absent, never half-written
    for older in folder.glob("step-*"):
        if older != target:
            shutil.rmtree(older, ignore_errors=True)
    return target


def load_checkpoint(path: Path, model, optimizer, scheduler, device) -> dict:
    """Restore the checkpoint into the given objects; returns its position (``state.json``)."""
    model.load_state_dict(torch.load(path / "model.pt", map_location=device))
    saved = torch.load(path / "trainer.pt", map_location="cpu", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if saved.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return json.loads((path / "state.json").read_text())


def remove_checkpoints(out_dir: Path) -> None:
    shutil.rmtree(Path(out_dir) / CHECKPOINTS, ignore_errors=True)
