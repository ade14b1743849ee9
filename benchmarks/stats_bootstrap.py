"""Bootstrap intervals: seconds for 10,000 resamples of 1,000 cases, plain and clustered (3 repeats).

Prints one JSON object on its last line (a figure, not a test: tests never time themselves).
"""

from __future__ import annotations

import json
import time

import numpy as np

from evalkit import stats


def main() -> None:
    x = np.random.default_rng(1).random(1000)
    stats.bootstrap_mean_ci(x[:10], n_resamples=10)  # warm up
    t0 = time.perf_counter()
    stats.bootstrap_mean_ci(x, n_resamples=10_000)
    plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    stats.bootstrap_mean_ci(np.repeat(x, 3), np.repeat(np.arange(1000), 3), n_resamples=10_000)
    clustered = time.perf_counter() - t0
    print(json.dumps({"cases": 1000, "resamples": 10_000, "plain_s": round(plain, 4),
                      "clustered_3_repeats_s": round(clustered, 4)}))


if __name__ == "__main__":
    main()
