"""Names of the queryable extras aiida-ccdcgan writes on nodes and groups (one place for all of them).

Every imported ``StructureData`` carries these extras, so QueryBuilder filters work on them, e.g.
``filters={'extras.formation_energy_per_atom': {'<': -0.2}}``.
"""

from ..dataset.records import ENERGY_SCALE  # noqa: F401  (a record property before it is an extra)

SOURCE_ID = "source_id"
"""The crystal's id in its source: a Materials Project id, a row id, a file name."""

FORMULA = "formula"
"""Reduced formula, e.g. ``Bi2Se3``."""

ELEMENTS = "elements"
"""Sorted list of element symbols."""

CHEMICAL_SYSTEM = "chemical_system"
"""Element symbols joined by ``-`` in alphabetical order, e.g. ``Bi-Se``."""

NATOMS = "natoms"
"""Number of atoms in the cell."""

FORMATION_ENERGY = "formation_energy_per_atom"
"""Formation energy in eV/atom (only where the source gives one)."""

TEMPLATES = "templates"
"""The templates whose substituted crystals relaxed to this one (a database crystal found several times is kept once)."""

GROUP_KEY = "group_key"
"""Key that group-aware splits keep together, e.g. the V–O template id (only where the source gives one)."""

PROPERTIES = "properties"
"""Further scalar columns of the source, under their sanitised names."""

GROUP_IMPORT = "ccdcgan_import"
"""Extra of a dataset Group describing the one import it holds (file digest, format, options, count)."""

GROUP_SPLIT = "ccdcgan_split"
"""Extra of a split Group: the dataset it was cut from, the calcfunction that decided it, its part."""

E_ABOVE_HULL = "e_above_hull"
"""Energy above the convex hull in eV/atom, on the energy scale named by ``ENERGY_SCALE``."""

CLASSIFICATION = "classification"
"""``stable``, ``metastable`` or ``unstable`` by the paper's thresholds for a compound, ``elemental`` for a crystal of
one element (aiida_ccdcgan.thermodynamics)."""

DISTINCT = "distinct"
"""True if the crystal matches no training crystal and no earlier candidate (StructureMatcher 0.2/0.3/5°)."""

ENERGY_PER_ATOM = "energy_per_atom"
"""Total energy per atom of a relaxed crystal in eV/atom, on the scale ``ENERGY_SCALE``."""

DESIGN_ROUND = "design_round"
"""The round of ``ccdcgan.inverse_design`` that generated a relaxed crystal."""

DESIGN_MODE = "design_mode"
"""The loop mode that generated it: ``dcgan``, ``dcgan_constraint`` or ``ccdcgan``."""

GENERATOR = "generator"
"""The uuid of the generator model (KerasModelData) that generated it."""

TRAINING_FILE = "ccdcgan_training_file"
"""On a SinglefileData written by ``tools.datasets.training_file``: the sha256 of its content."""


def composition_extras(structure) -> dict:
    """The extras every stored crystal carries from its composition alone: formula, elements, chemical system and
    number of atoms of the pymatgen ``structure``."""
    composition = structure.composition
    elements = sorted(element.symbol for element in composition.elements)
    return {FORMULA: composition.reduced_formula, ELEMENTS: elements, CHEMICAL_SYSTEM: "-".join(elements),
            NATOMS: len(structure)}  # fmt: skip
