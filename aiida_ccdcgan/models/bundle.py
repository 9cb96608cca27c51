"""A trained CCDCGAN as one object: its configuration and its networks, loaded and saved by role.

What the compute-node jobs, the figures and the benchmarks do with trained networks — encode crystals to graphs,
decode graphs to crystals, sample graphs, give a crystal's formation energy — goes through :class:`ModelBundle`,
so the five-argument calls of :mod:`.inference` (representation, layout, encoders, decoders) are written once.
Keras is imported only when networks are loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .config import BACKOFF_FACTORS, TrainingConfig, model_file


@dataclasses.dataclass
class ModelBundle:
    """A training configuration and its networks by role (``site_encoder``, …, ``generator``, ``constraint``)."""

    config: TrainingConfig
    networks: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, config: TrainingConfig, folder: Path, roles: Iterable[str]) -> ModelBundle:
        """The networks ``roles`` from ``folder`` (``<role>.keras``, loaded in Keras's safe mode), those present."""
        import keras

        from . import networks  # noqa: F401  (registers the layers of the spatial GAN for safe-mode loading)

        paths = {role: Path(folder) / model_file(role) for role in dict.fromkeys(roles)}
        return cls(
            config,
            {
                role: keras.saving.load_model(path, safe_mode=True, compile=False)
                for role, path in paths.items()
                if path.exists()
            },
        )

    def save(self, folder: Path, roles: Iterable[str]) -> None:
        """Write the networks ``roles`` into ``folder`` as ``<role>.keras``."""
        for role in roles:
            self.networks[role].save(Path(folder) / model_file(role))

    def has(self, roles: Iterable[str]) -> bool:
        """Whether every network of ``roles`` is in the bundle."""
        return all(role in self.networks for role in roles)

    def encode(self, crystals) -> np.ndarray:
        """The crystal graphs ``(N, side, side, 1)`` of canonical crystals, through the encoders."""
        from .inference import encode_crystals

        return encode_crystals(
            crystals,
            self.config.representation,
            self.config.layout,
            self.networks["site_encoder"],
            self.networks["lattice_encoder"],
        )

    def encode_structures(self, structures) -> tuple[np.ndarray, list[int]]:
        """The graphs of the pymatgen ``structures`` the representation can hold, and their indices."""
        from .inference import encode_structures_to_graphs

        return encode_structures_to_graphs(
            structures,
            self.config.representation,
            self.config.layout,
            self.networks["site_encoder"],
            self.networks["lattice_encoder"],
        )

    def cell_order_graphs(self, structures, orders: int, given: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The graphs of the pymatgen ``structures`` in the first ``orders`` orders of their cell vectors (``given``
        False: without the order as given) and each graph's structure index (:func:`~.inference.cell_order_graphs`)."""
        from .inference import cell_order_graphs

        return cell_order_graphs(
            structures,
            self.config.representation,
            self.config.layout,
            self.networks["site_encoder"],
            self.networks["lattice_encoder"],
            orders,
            given=given,
        )

    def decode(self, graphs) -> list:
        """The crystals (or failures) the decoders and the representation make of ``graphs``."""
        from .inference import decode_graphs

        return decode_graphs(
            graphs,
            self.config.representation,
            self.config.layout,
            self.networks["site_decoder"],
            self.networks["lattice_decoder"],
        )

    def sample(self, count: int, seed: int, step_scale: str = "learnt") -> np.ndarray:
        """``count`` graphs of the generator from seeded Gaussian noise (``step_scale``:
        :data:`~.config.STEP_SCALES`)."""
        from .inference import sample_graphs

        return sample_graphs(self.networks["generator"], count, seed, step_scale)

    def anchors(self, count: int, seed: int) -> np.ndarray:
        """The training graphs an anchored generator steps from for :meth:`sample`'s ``count`` graphs of ``seed``."""
        from .inference import anchor_graphs

        return anchor_graphs(self.networks["generator"], count, seed)

    def predicted_energies(self, graphs) -> np.ndarray:
        """The constraint's formation energy (eV/atom) of each graph."""
        return self.networks["constraint"].predict(graphs, verbose=0).ravel()

    def formation_energies(self, structures) -> np.ndarray:
        """The formation energy (eV/atom) of each pymatgen structure as the configuration's crystal energy gives it
        (:func:`~.inference.crystal_formation_energies`)."""
        from .inference import crystal_formation_energies

        return crystal_formation_energies(structures, self.config, self.networks)


@dataclasses.dataclass
class Candidate:
    """One sampled graph, decoded: its crystal (None when decoding failed), ``outcome`` (``valid``, a validity
    reason, ``screened_out`` or a decoding failure) and ``detail``, the constraint's prediction for the graph and,
    for a valid crystal where the bundle can judge it, the formation energy of the decoded crystal (eV/atom)."""

    sample: int
    structure: object
    outcome: str
    detail: str = ""
    predicted_formation_energy: float | None = None
    crystal_formation_energy: float | None = None


def sample_candidates(
    bundle: ModelBundle,
    count: int,
    seed: int,
    screening: Iterable[str],
    max_energy: float | None = None,
    step_scale: str = "learnt",
) -> list[Candidate]:
    """Sample ``count`` graphs (seeded; ``step_scale``: :data:`~.config.STEP_SCALES`), decode them and judge each
    decoded crystal's validity (``backoff``, ``fallback``: a sample whose crystal is not valid takes the shorter steps
    of :data:`~.config.BACKOFF_FACTORS` in turn, keeping the first valid one, its graph with it); where the bundle holds
    the ``screening`` networks, give each valid crystal its formation energy and, with ``max_energy``, mark those
    above it (or without one: beyond the encoders' limits) ``screened_out`` — the paper's DCGAN + constraint."""
    from ..representation.validity import validity

    def judged(results) -> dict:
        """Each decoded crystal's validity (reason, detail), by sample index."""
        return {
            i: validity(r.structure, bundle.config.representation)
            for i, r in results.items()
            if r.structure is not None
        }

    graphs = bundle.sample(count, seed, step_scale)
    results = dict(enumerate(bundle.decode(graphs)))
    reasons = judged(results)
    if step_scale in BACKOFF_FACTORS:
        anchors = bundle.anchors(count, seed)
        for factor in BACKOFF_FACTORS[step_scale]:
            retry = [i for i in results if i not in reasons or reasons[i][0] is not None]
            if not retry:
                break
            shorter = anchors[retry] + factor * (graphs[retry] - anchors[retry])
            again = dict(zip(retry, bundle.decode(shorter)))
            valid_again = {i: reason for i, reason in judged(again).items() if reason[0] is None}
            position = {i: k for k, i in enumerate(retry)}
            graphs[list(valid_again)] = shorter[[position[i] for i in valid_again]]
            results.update({i: again[i] for i in valid_again})
            reasons.update(valid_again)
    predicted = bundle.predicted_energies(graphs) if bundle.has(["constraint"]) else None
    valid = [index for index, (reason, _) in reasons.items() if reason is None]
    energies = {}
    if bundle.has(screening) and valid:
        energies = dict(zip(valid, bundle.formation_energies([results[i].structure for i in valid]).tolist()))
    candidates = []
    for index, result in results.items():
        graph_energy = float(predicted[index]) if predicted is not None else None
        if result.structure is None:
            candidates.append(Candidate(index, None, result.failure.value, "", graph_energy))
            continue
        reason, detail = reasons[index]
        outcome = reason.value if reason else "valid"
        energy = energies.get(index, np.nan)
        if outcome == "valid" and max_energy is not None and not energy <= max_energy:
            outcome = "screened_out"  # NaN too: a crystal the encoders cannot hold
        candidates.append(
            Candidate(
                index,
                result.structure,
                outcome,
                detail or "",
                graph_energy,
                energy if np.isfinite(energy) else None,
            )
        )
    return candidates
