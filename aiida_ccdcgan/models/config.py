"""Settings of the CCDCGAN models and their training, in one dataclass per stage."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class AutoencoderSettings:
    """An autoencoder and its training. Paper: Adam lr 0.003 (code 3e-4), β (0.9, 0.99) (code 0.999), batch 1."""

    latent: int
    filters: int = 64
    learning_rate: float = 3e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    batch_size: int = 8
    epochs: int = 10


@dataclasses.dataclass(frozen=True)
class ConstraintSettings:
    """The formation-energy CNN and its training. Code: Adam 2e-4, β₁ 0.5, batch 64, MSE."""

    learning_rate: float = 2e-4
    beta_1: float = 0.5
    batch_size: int = 64
    epochs: int = 100


@dataclasses.dataclass(frozen=True)
class GanSettings:
    """The DCGAN and its training. Code: Adam 2e-4, β₁ 0.5, batch 128, 10⁶ steps, noise 200.

    ``mode``: ``dcgan`` (no constraint in the generator loss) or ``ccdcgan`` (the constraint's prediction
    enters the generator loss with weight ``fe_weight``, as ``exp`` — the mean of exp(E_f), as coded — or
    ``linear`` — the mean of E_f, as the paper's equation (2)).
    """

    mode: str = "ccdcgan"
    noise_dim: int = 200
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    batch_size: int = 128
    steps: int = 10_000
    fe_loss: str = "exp"
    fe_weight: float = 0.1

    def __post_init__(self):
        if self.mode not in ("dcgan", "ccdcgan"):
            raise ValueError(f"GAN mode must be 'dcgan' or 'ccdcgan', not {self.mode!r}.")
        if self.fe_loss not in ("exp", "linear"):
            raise ValueError(f"fe_loss must be 'exp' or 'linear', not {self.fe_loss!r}.")
