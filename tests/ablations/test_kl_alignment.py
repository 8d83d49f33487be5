"""KL alignment: zero when student equals teacher; no gradient reaches the teacher."""
import torch
import torch.nn.functional as F

from lr_core.losses import kl_alignment_loss


def test_zero_when_student_equals_teacher():
    q = F.normalize(torch.randn(3, 8), dim=-1)
    p = F.normalize(torch.randn(9, 8), dim=-1)
    out = kl_alignment_loss(q, q.clone(), p, 0.02, gather=False)
    assert out["loss"].abs() < 1e-6
    assert kl_alignment_loss(F.normalize(torch.randn(3, 8), dim=-1), q, p, 0.02, gather=False)["loss"] > 1e-3


def test_gradient_reaches_student_not_teacher():
    student = torch.randn(3, 8, requires_grad=True)
    teacher = torch.randn(3, 8, requires_grad=True)
    teacher_p = torch.randn(9, 8, requires_grad=True)
    p = torch.randn(9, 8, requires_grad=True)
    kl_alignment_loss(student, teacher, p, 0.5, teacher_passages=teacher_p, teacher_temperature=0.1,
                      gather=False)["loss"].backward()
    assert student.grad.abs().sum() > 0 and p.grad.abs().sum() > 0
    assert teacher.grad is None and teacher_p.grad is None


def test_hand_computed():
    s, t, p = torch.randn(2, 4), torch.randn(2, 4), torch.randn(5, 4)
    ps, pt = torch.softmax(s @ p.T, -1), torch.softmax(t @ p.T, -1)
    expect = (pt * (pt.log() - ps.log())).sum(-1).mean()
    assert torch.allclose(kl_alignment_loss(s, t, p, 1.0, gather=False)["loss"], expect, atol=1e-6)


def test_module_adds_weighted_kl_terms(make_module):
    from lr_core.data.datamodule import TrainCollator  # noqa: F401  (the module reads only the reps)

    m = make_module("kl", "loss.kl_weight=0.5", "loss.kl_sparse=true")
    reps = {"doc_dense": F.normalize(torch.randn(4, 8), dim=-1), "doc_sparse": torch.rand(4, 20),
            "full_q": F.normalize(torch.randn(2, 8), dim=-1), "light_q": F.normalize(torch.randn(2, 8), dim=-1),
            "sparse_q": torch.rand(2, 20)}
    terms = m.terms_from(reps, type("B", (), {"group_size": 2})())
    assert {"kl_dense", "kl_sparse"} <= set(terms) and terms["kl_dense"].weight == 0.5
    reps["light_q"] = reps["full_q"]
    assert m.terms_from(reps, type("B", (), {"group_size": 2})())["kl_dense"].loss.abs() < 1e-6
