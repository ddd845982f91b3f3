"""What report.py and long.py both read from the DASGD bench's runs: a run's JSON, and a mean ± sd cell."""
import json, math, statistics

NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def load(path):
    """A run's JSON; the results write non-finite numbers as the strings "NaN", "Infinity": read back as floats."""
    try:
        with open(path) as f:
            return json.load(f, object_hook=lambda o: {k: NON_FINITE.get(v, v) if isinstance(v, str) else v for k, v in o.items()})
    except (OSError, ValueError):
        return None


def fmt(values, digits=3):
    """Mean ± sample sd of the values that are not None ("non-finite" if one is)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "—"
    if any(not math.isfinite(v) for v in vals):
        return "non-finite"
    m = statistics.fmean(vals)
    return f"{m:.{digits}f} ± {statistics.stdev(vals):.{digits}f}" if len(vals) > 1 else f"{m:.{digits}f}"
