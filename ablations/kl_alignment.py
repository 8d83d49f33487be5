"""KL alignment: LightRetriever plus ``kl_weight * KL(teacher || student)`` between softmaxed
score rows; teacher = the detached symmetric (full-LLM query) dense scores, student = the
light dense scores, and with ``loss.kl_sparse`` also the light sparse scores (paper Table 5)."""
from lr_core.losses import kl_alignment_loss
from lr_core.modules import LightRetrieverModule, LossTerm
from lr_core.variants import register_variant


@register_variant("kl", "LightRetriever + KL(full dense || light dense) score alignment", "Table 5: KL",
                  display="LightRetriever + KL", table="table5", representations=("dense", "sparse", "hybrid"),
                  reference=("lightretriever", None))
class KLAlignmentModule(LightRetrieverModule):
    def terms_from(self, reps, batch):
        terms = super().terms_from(reps, batch)
        lc = self.cfg.loss
        students = [("kl_dense", reps["light_q"], reps["doc_dense"], self.tau_dense("light"))]
        if lc.kl_sparse:
            students.append(("kl_sparse", reps["sparse_q"], reps["doc_sparse"], lc.tau_sparse))
        for name, q, d, tau in students:
            # teacher rows over the same passages: full dense queries x dense documents
            out = kl_alignment_loss(q, reps["full_q"], d, tau, teacher_passages=reps["doc_dense"],
                                    teacher_temperature=self.tau_dense("full"))
            terms[name] = LossTerm(out["loss"], out["backward"], lc.kl_weight, tau=tau)
        return terms
