"""What each TOFU cell must show: one table, a direction per threshold.

Thresholds hold for the default tier (tiny-qwen3 on synthetic authors), computed under the numerics pins
(see evals/README.md): the same models, metrics and verdicts on Intel AVX-512/AMX and AMD AVX2 CPUs. Known failures are listed in
KNOWN_FAILURES with the measured value; they run as strict xfails, so a fix turns them into an XPASS
that must be acknowledged by removing the entry.
"""

AT_LEAST, AT_MOST = ">=", "<="

# method -> [(summary or metric name, direction, threshold)]
TOFU_EXPECTATIONS = {
    # The gold row is the retain-only model's own evaluation, so efficacy 1 and FQ 1 hold by construction and
    # prove nothing; what can fail is whether it is a real retrain: it keeps the target's utility, and it does
    # not know the forget authors the target memorised (target: ROUGE ~0.98, Min-K%++ AUC ~0.997).
    "retrain": [("retain_performance", AT_LEAST, 0.9), ("forget_rouge", AT_MOST, 0.85), ("mia_auc", AT_MOST, 0.9)],
    "finetune": [("forget_efficacy", AT_MOST, 0.2), ("retain_performance", AT_LEAST, 0.9)],  # must not forget
    "grad_ascent": [("forget_efficacy", AT_LEAST, 0.5)],  # forgets; utility damage is expected, not bounded
    "grad_diff": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "npo": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "simnpo": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "idk": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "rmu": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    # tightened (issue 11) once the tuned forget-adapter lr made DSU forget: measured 0.740 / 0.620 / 0.619
    "dsu": [("forget_efficacy", AT_LEAST, 0.5), ("retain_performance", AT_LEAST, 0.9)],
    # tightened (issue 11) with re-scored log-odds rounds: measured 1.0 / 1.0 / 0.726, retain 0.965 / 0.976 / 0.987
    "iwap": [("forget_efficacy", AT_LEAST, 0.5), ("retain_performance", AT_LEAST, 0.9)],
    "trou": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.9)],
}

# (method, split, threshold name) -> reason with the measured value (tiny-qwen3, seed 0, under the numerics
# pins of unlearn/numerics.py, so the same on every CPU kind). One entry per threshold, not per cell: a
# method that does not forget still has its retain bound asserted. Re-measured 2026-11-29 (issue 9); each
# entry is a claim that does not hold yet. ("target", split, "fq") is test_target_is_far_from_gold's.
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {
    ("idk", "forget10", "forget_efficacy"): "measured 0.2601 < 0.3: refusals lower ROUGE on 4 authors less than on 1-2",
    # finetune as METHODS.md defines it (issue 11): 5 epochs over the retain split at the target's lr (3e-3 on this
    # tier). The 2M-parameter model overwrites the forget authors' facts while it keeps training on 39 others
    # (interference, not a pipeline leak: the gold and target are untouched, and at the old shared unlearning
    # schedule, lr 3e-4 over 1-4 authors' worth of steps, it measured 0.058 / 0.015 / 0.004).
    ("finetune", "forget01", "forget_efficacy"): "measured 1.0 > 0.2: 5 retain epochs at lr 3e-3 overwrite 1 author's facts",
    ("finetune", "forget05", "forget_efficacy"): "measured 0.7624 > 0.2: 5 retain epochs at lr 3e-3 overwrite the forget facts",
    ("finetune", "forget10", "forget_efficacy"): "measured 0.5732 > 0.2: 5 retain epochs at lr 3e-3 overwrite the forget facts",
    # adaptive RMU tuned on forget01 only (lr 1e-2, beta 20, alpha 100: efficacy 1.0) and applied unchanged
    ("rmu", "forget05", "forget_efficacy"): "measured 0.1290 < 0.3: the forget01-tuned setting moves 2 authors' facts little",
    ("rmu", "forget10", "forget_efficacy"): "measured 0.0916 < 0.3: the forget01-tuned setting moves 4 authors' facts little",
    ("npo", "forget10", "retain_performance"): "measured 0.8463 < 0.85: NPO with beta=0.1 damages utility on 4 authors",
    ("trou", "forget10", "retain_performance"): "measured 0.8902 < 0.9: the trust region does not hold utility on 4 authors",
    ("target", "forget01", "fq"): "measured FQ(target vs gold) 0.0811 >= 0.01: 20 forget rows give the KS test little power "
                                  "(forget05: 0.0013, forget10: 5.5e-09, both pass)",
}


def check(value: float, direction: str, threshold: float) -> bool:
    return value >= threshold if direction == AT_LEAST else value <= threshold
