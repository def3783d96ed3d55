"""What each TOFU cell must show: one table, a direction per threshold.

Thresholds hold for the default tier (tiny-qwen3 on synthetic authors). Known failures are listed in
KNOWN_FAILURES with the measured value; they run as strict xfails, so a fix turns them into an XPASS
that must be acknowledged by removing the entry.
"""

AT_LEAST, AT_MOST = ">=", "<="

# method -> [(summary or metric name, direction, threshold)]
TOFU_EXPECTATIONS = {
    "retrain": [("forget_efficacy", AT_LEAST, 1.0), ("forget_quality", AT_LEAST, 0.999)],  # gold by construction
    "finetune": [("forget_efficacy", AT_MOST, 0.2), ("retain_performance", AT_LEAST, 0.9)],  # must not forget
    "grad_ascent": [("forget_efficacy", AT_LEAST, 0.5)],  # forgets; utility damage is expected, not bounded
    "grad_diff": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "npo": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "simnpo": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "idk": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "rmu": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.85)],
    "dsu": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.9)],
    "iwap": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.9)],
    "trou": [("forget_efficacy", AT_LEAST, 0.3), ("retain_performance", AT_LEAST, 0.9)],
}

# (method, split) -> reason with the measured value (tiny-qwen3, seed 0, 2-core CPU)
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def check(value: float, direction: str, threshold: float) -> bool:
    return value >= threshold if direction == AT_LEAST else value <= threshold
