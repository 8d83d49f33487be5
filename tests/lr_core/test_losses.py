"""Contrastive loss: targets, temperature, and DDP equivalence (2 gloo processes vs 1)."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from lr_core.losses import contrastive_loss, gather_with_grad

B, G, D_IN, D = 4, 3, 6, 5  # 4 queries (2 per rank), groups of 1 positive + 2 negatives


def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(D_IN, D, generator=g), torch.randn(B, D_IN, generator=g), torch.randn(B * G, D_IN, generator=g)


def encode(w, x):
    return F.normalize(x @ w, dim=-1)


def test_loss_matches_hand_computation():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])  # groups of 2: q0 -> p0, q1 -> p2
    out = contrastive_loss(q, p, group_size=2, temperature=0.5, gather=False)
    # q0 scores [1,0,0,1]/0.5 -> logits [2,0,0,2], target 0; q1 scores [0,1,1,0] -> [0,2,2,0], target 2
    expected = -torch.log(torch.exp(torch.tensor(2.0)) / (2 * torch.exp(torch.tensor(2.0)) + 2))
    torch.testing.assert_close(out["loss"], expected)
    torch.testing.assert_close(out["backward"], out["loss"])


def test_wrong_passage_count_is_an_error():
    with pytest.raises(ValueError, match="passages"):
        contrastive_loss(torch.zeros(2, 3), torch.zeros(5, 3), group_size=3, temperature=1.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    w, xq, xp = make_inputs()
    w = w.clone().requires_grad_(True)
    per = B // world
    q = encode(w, xq[rank * per:(rank + 1) * per])
    p = encode(w, xp[rank * per * G:(rank + 1) * per * G])
    gathered = gather_with_grad(q)
    out = contrastive_loss(q, p, G, temperature=0.05)
    out["backward"].backward()
    dist.all_reduce(w.grad)  # what DDP does: average of the ranks' gradients
    w.grad /= world
    torch.save({"loss": out["loss"].detach(), "grad": w.grad, "gathered": gathered.detach(),
                "local_grad_flag": gathered.requires_grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_ddp_two_processes_equal_one_process_with_concatenated_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    w, xq, xp = make_inputs()
    w = w.clone().requires_grad_(True)
    q_all = encode(w, xq)
    out = contrastive_loss(q_all, encode(w, xp), G, temperature=0.05, gather=False)
    out["loss"].backward()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(got["loss"], out["loss"].detach(), atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(got["grad"], w.grad, atol=1e-6, rtol=1e-5)
        # gathered queries are in rank order: rank 0's slice first
        torch.testing.assert_close(got["gathered"], q_all.detach(), atol=1e-6, rtol=0)


def _worker_without_scaling(rank: int, world: int, port: int, out_dir: str):
    """Control: without the world-size factor the averaged gradient is too small (so the test can fail)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    w, xq, xp = make_inputs()
    w = w.clone().requires_grad_(True)
    per = B // world
    out = contrastive_loss(encode(w, xq[rank * per:(rank + 1) * per]), encode(w, xp[rank * per * G:(rank + 1) * per * G]),
                           G, temperature=0.05)
    out["loss"].backward()
    dist.all_reduce(w.grad)
    w.grad /= world
    torch.save(w.grad, os.path.join(out_dir, f"unscaled{rank}.pt"))
    dist.destroy_process_group()


def test_world_size_scaling_is_needed(tmp_path):
    mp.spawn(_worker_without_scaling, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    w, xq, xp = make_inputs()
    w = w.clone().requires_grad_(True)
    contrastive_loss(encode(w, xq), encode(w, xp), G, temperature=0.05, gather=False)["loss"].backward()
    unscaled = torch.load(tmp_path / "unscaled0.pt")
    torch.testing.assert_close(unscaled * 2, w.grad, atol=1e-6, rtol=1e-5)


# --------------------------------------------------------------------------- FLOPs over the global batch


def _flops_worker(rank: int, world: int, port: int, out_dir: str, gather: bool):
    from lr_core.losses import flops_loss

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    w, _, xp = make_inputs()
    w = w.clone().requires_grad_(True)
    per = B * G // world
    out = flops_loss(torch.relu(xp[rank * per:(rank + 1) * per] @ w), gather=gather)
    out["backward"].backward()
    dist.all_reduce(w.grad)
    w.grad /= world
    torch.save({"loss": out["loss"].detach(), "grad": w.grad}, os.path.join(out_dir, f"flops{rank}.pt"))
    dist.destroy_process_group()


def _flops_reference():
    from lr_core.sparse import flops_regularizer

    w, _, xp = make_inputs()
    w = w.clone().requires_grad_(True)
    loss = flops_regularizer(torch.relu(xp @ w))
    loss.backward()
    return loss.detach(), w.grad


def test_gathered_flops_on_two_ranks_equals_one_process(tmp_path):
    mp.spawn(_flops_worker, args=(2, _free_port(), str(tmp_path), True), nprocs=2, join=True)
    loss, grad = _flops_reference()
    for rank in range(2):
        got = torch.load(tmp_path / f"flops{rank}.pt")
        torch.testing.assert_close(got["loss"], loss, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(got["grad"], grad, atol=1e-6, rtol=1e-5)


def test_per_rank_flops_differs_from_the_global_batch(tmp_path):
    """``gather=False`` (the authors' per-rank FLOPs): a different loss and gradient, so the test above can fail."""
    mp.spawn(_flops_worker, args=(2, _free_port(), str(tmp_path), False), nprocs=2, join=True)
    loss, grad = _flops_reference()
    got = torch.load(tmp_path / "flops0.pt")
    assert not torch.allclose(got["loss"], loss, atol=1e-4) and not torch.allclose(got["grad"], grad, atol=1e-4)


def test_flops_loss_on_one_process_is_the_regulariser():
    from lr_core.losses import flops_loss
    from lr_core.sparse import flops_regularizer

    x = torch.rand(6, 9)
    for gather in (True, False):
        out = flops_loss(x, gather=gather)
        torch.testing.assert_close(out["loss"], flops_regularizer(x))
        torch.testing.assert_close(out["backward"], out["loss"])
    with pytest.raises(ValueError, match="non-empty"):
        flops_loss(torch.zeros(0, 3))
