"""How well a trained network predicts: regression metrics."""

from __future__ import annotations

import numpy as np


def regression_metrics(predicted, target) -> dict:
    """MAE, RMSE and R² of predictions against targets."""
    predicted, target = np.ravel(predicted), np.ravel(target)
    residual = predicted - target
    total = np.sum((target - target.mean()) ** 2)
    return {
        "mae": float(np.mean(np.abs(residual))),
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "r2": float(1 - np.sum(residual**2) / total) if total > 0 else None,
        "n": int(len(target)),
    }
