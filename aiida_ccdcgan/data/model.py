"""``ccdcgan.model``: one trained Keras model (a ``.keras`` file) with its hash and what it was trained for."""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiida.orm import SinglefileData

from ..models.pretrained import file_sha256


class ModelFileError(ValueError):
    """A model file that must not be loaded: tampered, not a Keras model, or built for another representation."""


class KerasModelData(SinglefileData):
    """A ``.keras`` model file with attributes ``role`` (e.g. ``generator``), ``sha256``, ``framework``,
    ``keras_version``, ``backend``, ``representation_digest``, ``config_digest`` and, where given, the
    ``representation`` settings themselves (so a mismatch can be named).

    :meth:`load` checks the hash and the representation before Keras reads the file, and reads it in safe
    mode (no arbitrary code, no pickle). Importing this module does not import Keras.
    """

    def __init__(
        self,
        file,
        role: str,
        representation_digest: str,
        config_digest: str,
        keras_version: str,
        backend: str,
        representation: dict | None = None,
        **kwargs,
    ):
        super().__init__(file, filename=f"{role}.keras", **kwargs)
        path = Path(file)
        self.base.attributes.set_many(
            {
                "role": role,
                "sha256": file_sha256(path),
                "framework": "keras",
                "keras_version": keras_version,
                "backend": backend,
                "representation_digest": representation_digest,
                "config_digest": config_digest,
                **({"representation": representation} if representation is not None else {}),
            }
        )

    @classmethod
    def from_training_run(cls, path, metrics: dict) -> KerasModelData:
        """The model file ``path`` (named ``<role>.keras``) of a ``ccdcgan-train`` run whose ``metrics.json`` is
        ``metrics``: role, digests, Keras version, backend and representation as that run recorded them."""
        return cls(
            path,
            role=Path(path).stem,
            representation_digest=metrics["representation_digest"],
            config_digest=metrics["config_digest"],
            keras_version=metrics["keras_version"],
            backend=metrics["backend"],
            representation=metrics["config"]["representation"],
        )

    @property
    def role(self) -> str:
        """Which network this is: site_encoder, site_decoder, lattice_encoder, lattice_decoder, constraint, generator, discriminator."""
        return self.base.attributes.get("role")

    @property
    def sha256(self) -> str:
        """The sha256 recorded when the model was stored."""
        return self.base.attributes.get("sha256")

    def verify(self, representation_digest: str | None = None) -> None:
        """Raise :class:`ModelFileError` if the content no longer has its recorded hash or the representation differs."""
        with self.as_path() as path:
            actual = file_sha256(path)
        if actual != self.sha256:
            raise ModelFileError(
                f"Model {self.pk} ({self.role}): the file's sha256 {actual[:12]}… is not the recorded {self.sha256[:12]}…; "
                "the file was altered after it was stored. Do not load it; retrain or restore it."
            )
        if representation_digest is not None and representation_digest != self.base.attributes.get(
            "representation_digest"
        ):
            raise ModelFileError(
                f"Model {self.pk} ({self.role}) was trained for another representation (digest "
                f"{self.base.attributes.get('representation_digest', '')[:12]}…, expected {representation_digest[:12]}…); "
                "use models trained with the same representation settings."
            )

    def load(self, representation_digest: str | None = None):
        """Verify, then load the model with Keras in safe mode (imports Keras)."""
        self.verify(representation_digest)
        import keras

        from ..models import networks  # noqa: F401  (registers the layers of the spatial GAN for safe-mode loading)

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{self.role}.keras"
            path.write_bytes(self.get_content(mode="rb"))
            try:
                return keras.saving.load_model(path, safe_mode=True, compile=False)
            except Exception as exception:
                raise ModelFileError(
                    f"Model {self.pk} ({self.role}) is not a loadable Keras model: {exception}"
                ) from None
