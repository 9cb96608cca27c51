"""Autoencoder weights that ship with the package, for training to start from.

Both autoencoders are element-agnostic — the site autoencoder sees one element's channel at a time, the lattice
autoencoder only the cell — so weights learnt on one chemical system are a good start for another: the `fast`
loop fine-tunes V–O-trained autoencoders on a few hundred Bi–Se crystals instead of learning from nothing.
Each set is a folder ``resources/pretrained/<name>/`` with the four ``.keras`` files and ``record.json`` (the
representation and autoencoder settings they were trained with, the data, the held-out reconstruction and the
sha256 of every file), written by ``scripts/ship_pretrained.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

PRETRAINED = Path(__file__).resolve().parents[1] / "resources" / "pretrained"
"""Folder of the shipped pretrained autoencoder sets."""

ARCHITECTURE_FIELDS = ("latent", "latent_grid", "filters", "batch_norm")
"""Autoencoder settings the weights fix; the training settings (epochs, learning rate, …) are free."""

VOXEL_FIELDS = ("box_length", "site_grid", "lattice_grid", "sigma", "threshold")
"""Representation settings the weights fix; the elements are free."""


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_names() -> list[str]:
    """Names of the shipped pretrained autoencoder sets."""
    return sorted(path.parent.name for path in PRETRAINED.glob("*/record.json"))


def pretrained_record(name: str) -> dict:
    """The record of a shipped set; a ValueError names the available ones if ``name`` is not shipped."""
    path = PRETRAINED / name / "record.json"
    if not path.is_file():
        raise ValueError(
            f"No pretrained autoencoders named {name!r}; available: {', '.join(pretrained_names()) or 'none'}."
        )
    return json.loads(path.read_text())


def check_compatible(name: str, kind: str, settings: dict, representation: dict) -> None:
    """Raise a ValueError naming every setting of the ``kind`` autoencoder that differs from the set ``name``."""
    record = pretrained_record(name)
    expected = {
        **{field: record[f"{kind}_autoencoder"][field] for field in ARCHITECTURE_FIELDS},
        **{field: record["representation"][field] for field in VOXEL_FIELDS},
    }
    given = {**{f: settings[f] for f in ARCHITECTURE_FIELDS}, **{f: representation[f] for f in VOXEL_FIELDS}}
    wrong = [
        f"{field} {given[field]} (trained with {value})" for field, value in expected.items() if given[field] != value
    ]
    if wrong:
        raise ValueError(
            f"The pretrained {kind} autoencoder {name!r} does not fit these settings: {', '.join(wrong)}; "
            "use its settings or drop 'pretrained'."
        )


def load_pretrained(name: str, kind: str) -> tuple:
    """Return the ``(encoder, decoder)`` of the ``kind`` (site or lattice) autoencoder of set ``name``.

    Every file is checked against the sha256 in the record before Keras loads it in safe mode.
    """
    import keras

    record = pretrained_record(name)
    models = []
    for part in ("encoder", "decoder"):
        path = PRETRAINED / name / f"{kind}_{part}.keras"
        if file_sha256(path) != record["sha256"][path.name]:
            raise ValueError(f"{path} does not match the sha256 in its record; reinstall aiida-ccdcgan.")
        models.append(keras.saving.load_model(path, safe_mode=True, compile=False))
    return tuple(models)
