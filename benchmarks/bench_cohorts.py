"""Median of 3: CohortModel().fit on 100,000 x 6 and predict on 1,000,000 x 6 (DataFrames, ~5% NaN)."""
import statistics, time
import numpy as np, pandas as pd
from trainmatch.kmeans import CohortModel
rng = np.random.default_rng(0)
P = np.array([[2.0]*6, [4,4,2.3,2.3,4,2.3], [2.3,2.3,4,4,2.3,4], [4,2.3,4,2.3,4,2.3], [4.2]*6])
def data(n):
    X = np.clip(P[rng.integers(0, 5, n)] + rng.normal(0, 0.45, (n, 6)), 1, 5)
    X[rng.random(X.shape) < 0.05] = np.nan
    return pd.DataFrame(X, columns=[f"score_{i}" for i in range(6)])
X, Y = data(100_000), data(1_000_000)
fits, preds = [], []
for _ in range(3):
    t = time.perf_counter(); m = CohortModel().fit(X); fits.append(time.perf_counter() - t)
    t = time.perf_counter(); m.predict(Y); preds.append(time.perf_counter() - t)
print("fit 100k:", [round(x, 2) for x in fits], "median", round(statistics.median(fits), 2), "s; k =", m.n_clusters_)
print("predict 1M:", [round(x, 2) for x in preds], "median", round(statistics.median(preds), 2), "s")
