"""``ccdcgan.structures``: many crystals of any sizes in one node, for sampling rounds of thousands."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from aiida.orm import ArrayData
from pymatgen.core import Lattice, Structure

INFO_PREFIX = "info_"


class StructureBatchData(ArrayData):
    """A batch of crystals stored as concatenated arrays (cells, atomic numbers, fractional coordinates and per-
    crystal offsets) plus optional per-crystal info arrays, so a round of generated candidates is one node
    (stored in a fraction of a second) instead of thousands.
    """

    @classmethod
    def from_structures(
        cls, structures: Sequence[Structure], info: dict[str, Sequence] | None = None
    ) -> StructureBatchData:
        """Build an unstored batch from pymatgen structures and per-structure info columns (numbers or text)."""
        node = cls()
        counts = np.array([len(s) for s in structures], dtype=np.int64)
        node.set_array("offsets", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        node.set_array("cells", np.array([s.lattice.matrix for s in structures], dtype=np.float64).reshape(-1, 3, 3))
        node.set_array("numbers", np.array([site.specie.Z for s in structures for site in s], dtype=np.int64))
        node.set_array(
            "frac_coords", np.concatenate([s.frac_coords for s in structures]) if structures else np.zeros((0, 3))
        )
        for name, values in (info or {}).items():
            if len(values) != len(structures):
                raise ValueError(f"Info column {name!r} has {len(values)} values for {len(structures)} structures.")
            node.set_array(f"{INFO_PREFIX}{name}", np.asarray(values))
        node.base.attributes.set("count", len(structures))
        return node

    @classmethod
    def concatenate(cls, batches: Sequence[StructureBatchData]) -> StructureBatchData:
        """One unstored batch of the crystals of ``batches`` in order; they must have the same info columns."""
        names = {tuple(batch.info_names) for batch in batches}
        if len(names) != 1:
            raise ValueError(f"Batches with different info columns cannot be joined: {sorted(names)}.")
        node = cls()
        offsets = [0]
        for batch in batches:
            offsets += (batch.get_array("offsets")[1:] + offsets[-1]).tolist()
        node.set_array("offsets", np.array(offsets, dtype=np.int64))
        for name in ("cells", "numbers", "frac_coords", *(f"{INFO_PREFIX}{n}" for n in names.pop())):
            node.set_array(name, np.concatenate([batch.get_array(name) for batch in batches]))
        node.base.attributes.set("count", sum(batch.count for batch in batches))
        return node

    def slice(self, start: int, stop: int) -> StructureBatchData:
        """An unstored batch of crystals ``start`` to ``stop`` (exclusive) with their info columns."""
        offsets = self.get_array("offsets")
        first, last = offsets[start], offsets[stop]
        node = type(self)()
        node.set_array("offsets", (offsets[start : stop + 1] - first).astype(np.int64))
        node.set_array("cells", self.get_array("cells")[start:stop])
        node.set_array("numbers", self.get_array("numbers")[first:last])
        node.set_array("frac_coords", self.get_array("frac_coords")[first:last])
        for name in self.info_names:
            node.set_array(f"{INFO_PREFIX}{name}", self.info(name)[start:stop])
        node.base.attributes.set("count", stop - start)
        return node

    @property
    def count(self) -> int:
        """Number of crystals."""
        return self.base.attributes.get("count")

    def info(self, name: str) -> np.ndarray:
        """The per-crystal info column ``name``."""
        return self.get_array(f"{INFO_PREFIX}{name}")

    @property
    def info_names(self) -> list[str]:
        """Names of the per-crystal info columns."""
        return sorted(n[len(INFO_PREFIX) :] for n in self.get_arraynames() if n.startswith(INFO_PREFIX))

    def get_structures(self) -> list[Structure]:
        """Return the crystals as pymatgen structures."""
        offsets, cells = self.get_array("offsets"), self.get_array("cells")
        numbers, coords = self.get_array("numbers"), self.get_array("frac_coords")
        return [
            Structure(
                Lattice(cells[i]), numbers[offsets[i] : offsets[i + 1]].tolist(), coords[offsets[i] : offsets[i + 1]]
            )
            for i in range(len(cells))
        ]
