"""The potentials as TorchSim models: energies, forces and stresses of many crystals in one call.

TorchSim 0.3.0 (the newest release for Python 3.11) ships a SevenNet wrapper written for an older sevenn (it
imports names sevenn 0.13 no longer has) and none for CHGNet, so the two small adapters live here. Both keep the
optimiser's state in float64 and evaluate the network in its own float32; stresses follow ASE's sign convention
(what TorchSim's cell filters expect). Imported only where the batched route runs: it needs torch.
"""

from __future__ import annotations

import torch
from torch_sim.models.interface import ModelInterface
from torch_sim.state import SimState

from .settings import RelaxSettings

STATE_DTYPE = torch.float64
"""The optimiser's precision (positions, cells, FIRE state), whatever the network's."""


def _voigt_to_matrix(voigt: torch.Tensor) -> torch.Tensor:
    """(n, 6) stresses in Voigt order xx, yy, zz, yz, xz, xy → (n, 3, 3) symmetric matrices."""
    xx, yy, zz, yz, xz, xy = voigt.unbind(-1)
    return torch.stack([xx, xy, xz, xy, yy, yz, xz, yz, zz], dim=-1).reshape(-1, 3, 3)


class SevenNetBatchModel(ModelInterface):
    """A SevenNet checkpoint (a pretrained name that ships in the wheel, or a file) over a batch of crystals."""

    def __init__(self, settings: RelaxSettings):
        super().__init__()
        from sevenn.util import load_checkpoint

        name = settings.checkpoint or settings.model_name
        network = load_checkpoint(name).build_model()
        if not network.type_map or network.cutoff == 0.0:
            raise ValueError(f"the SevenNet model {name} has no type map or cutoff")
        if network.modal_map:
            raise ValueError(f"the SevenNet model {name} is multi-fidelity")
        network.set_is_batch_data(True)
        network.eval_type_map = torch.tensor(True)
        self._device, self._dtype = torch.device(settings.device), STATE_DTYPE
        self._compute_forces = self._compute_stress = True
        self.network = network.to(self._device).eval()
        self.cutoff = torch.tensor(float(network.cutoff))

    def forward(self, state: SimState, **_) -> dict[str, torch.Tensor]:
        """Energy (eV) per crystal, forces (eV/Å) per atom and stress (eV/Å³, ASE's sign) per crystal."""
        import sevenn._keys as key
        from sevenn.atom_graph_data import AtomGraphData
        from torch_geometric.loader.dataloader import Collater
        from torch_sim.neighbors import vesin_nl_ts

        graphs = []
        for system in range(state.n_systems):
            mask = state.system_idx == system
            positions = state.positions[mask].to(torch.float32)
            cell = state.row_vector_cell[system].to(torch.float32)
            numbers = state.atomic_numbers[mask]
            edges, shifts = vesin_nl_ts(positions=positions, cell=cell, pbc=state.pbc, cutoff=self.cutoff)
            shifts = shifts.to(torch.float32)
            graph = AtomGraphData(
                **{
                    key.NODE_FEATURE: numbers,
                    key.ATOMIC_NUMBERS: numbers.to(torch.int64),
                    key.POS: positions,
                    key.EDGE_IDX: edges,
                    key.EDGE_VEC: positions[edges[1]] - positions[edges[0]] + shifts @ cell,
                    key.CELL: cell,
                    key.CELL_SHIFT: shifts,
                    key.CELL_VOLUME: torch.det(cell),
                    key.NUM_ATOMS: torch.tensor(len(numbers), device=self._device),
                    key.DATA_MODALITY: None,
                    key.INFO: {},
                }
            )
            graphs.append(graph)
        output = self.network(Collater([], follow_batch=None, exclude_keys=None)(graphs).to(self._device))
        stress = output[key.PRED_STRESS].detach()[..., [0, 1, 2, 4, 5, 3]]  # SevenNet xx yy zz xy yz zx → Voigt
        return {
            "energy": output[key.PRED_TOTAL_ENERGY].detach().to(STATE_DTYPE),
            "forces": output[key.PRED_FORCE].detach().to(STATE_DTYPE),
            "stress": -_voigt_to_matrix(stress).to(STATE_DTYPE),
        }


class CHGNetBatchModel(ModelInterface):
    """A CHGNet model (pretrained version or checkpoint file) over a batch of crystals (its energy is per atom)."""

    def __init__(self, settings: RelaxSettings):
        super().__init__()
        from chgnet.model import CHGNet

        if settings.checkpoint:
            network = CHGNet.from_file(settings.checkpoint)
        else:
            network = CHGNet.load(model_name=settings.model_name, use_device=settings.device, verbose=False)
        network.graph_converter.set_isolated_atom_response("error")
        self._device, self._dtype = torch.device(settings.device), STATE_DTYPE
        self._compute_forces = self._compute_stress = True
        self.network = network.to(self._device).eval()

    def forward(self, state: SimState, **_) -> dict[str, torch.Tensor]:
        """Energy (eV) per crystal, forces (eV/Å) per atom and stress (eV/Å³, ASE's sign) per crystal."""
        from ase import units
        from pymatgen.core import Lattice, Structure

        structures = []
        for system in range(state.n_systems):
            mask = state.system_idx == system
            structures.append(
                Structure(
                    Lattice(state.row_vector_cell[system].detach().cpu().numpy()),
                    state.atomic_numbers[mask].cpu().numpy(),
                    state.positions[mask].detach().cpu().numpy(),
                    coords_are_cartesian=True,
                )
            )
        graphs = [self.network.graph_converter(structure).to(self._device) for structure in structures]
        predictions = self.network.predict_graph(graphs, task="efs", batch_size=len(graphs))
        predictions = [predictions] if isinstance(predictions, dict) else predictions  # one graph: one dict
        counts = [len(structure) for structure in structures]
        as_tensor = lambda values: torch.as_tensor(values, dtype=STATE_DTYPE, device=self._device)  # noqa: E731
        return {
            "energy": as_tensor([p["e"] * n for p, n in zip(predictions, counts)]),
            "forces": torch.cat([as_tensor(p["f"]) for p in predictions]),
            "stress": torch.stack([as_tensor(p["s"]) * units.GPa for p in predictions]),
        }


def make_batch_model(settings: RelaxSettings) -> ModelInterface:
    """The TorchSim model of ``settings``' potential (weights from the wheel or its checkpoint)."""
    return {"sevennet": SevenNetBatchModel, "chgnet": CHGNetBatchModel}[settings.potential](settings)
