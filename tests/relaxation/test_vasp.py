"""The VASP engine to the limit possible without VASP: aiida-vasp's mock-vasp and dummy POTCARs (never licensed files).

Checked: the k-point mesh of "density 40", the INCAR, KPOINTS and POSCAR the facade makes aiida-vasp write (exactly),
and the whole facade run through mock-vasp, which answers from a registry entry this test records.
"""

import math
import sys
from pathlib import Path

import pytest
from aiida import orm
from aiida.engine import run_get_node
from pymatgen.core import Lattice, Structure

from aiida_ccdcgan.calculations.functions.relax import kpoints_from_density
from aiida_ccdcgan.data import StructureBatchData
from aiida_ccdcgan.workflows.relax import RelaxWorkChain

BIN = Path(sys.executable).parent
FAMILY = "ccdcgan-dummy-PBE"
DUMMY_POTCAR = """  PAW_PBE {element} 01Jan1111
 {zval:.1f}
 parameters from PSCTR are:
   VRHFIN ={element}: dummy
   LEXCH  = PE
   EATOM  =     1.1111 eV,    1.1111 Ry
   TITEL  = PAW_PBE {element} 01Jan1111
   LULTRA =        F    use ultrasoft PP ?
   IUNSCR =        1    unscreen: 0-lin 1-nonlin 2-no
   RPACOR =    1.111    partial core radius
   POMASS =  {mass:.3f}; ZVAL   =   {zval:.3f}    mass and valenz
   RCORE  =    1.111    outmost cutoff radius
   RWIGS  =    1.111; RWIGS  =    1.111    wigner-seitz radius (au A)
   ENMAX  =  111.111; ENMIN  =   111.111 eV
   RCLOC  =    1.111    cutoff for local pot
   LCOR   =        T    correct aug charges
   LPAW   =        T    paw PP
   EAUG   =  111.111
   DEXC   =    0.000
   RMAX   =    1.111    core radius for proj-oper
   RAUG   =    1.111    factor for augmentation sphere
   RDEP   =    1.111    radius for radial grids
   RDEPT  =    1.111    core radius for aug-charge
 END of PSCTR-controll parameters
 End of Dataset
"""


OUTCAR = """   NSW    =    {nsw}    number of steps for IOM
   IBRION =      {ibrion}    ionic relax: 0-MD 1-quasi-New 2-CG
   NELM   =     60;   NELMIN=  2; NELMDL= -5     # of ELM steps
--------------------------------------- Iteration      1(   1)  ---------------------------------------
--------------------------------------- Iteration      1(   2)  ---------------------------------------
 General timing and accounting informations for this job:
 ========================================================
                  Total CPU time used (sec):        1.000
                            User time (sec):        1.000
                          System time (sec):        0.000
                         Elapsed time (sec):        1.000
                   Maximum memory used (kb):      10000.
                   Average memory used (kb):          N/A
"""


def _varray(name: str, rows) -> str:
    lines = "\n".join("   <v>" + " ".join(f"{x:16.8f}" for x in row) + " </v>" for row in rows)
    return f'  <varray name="{name}" >\n{lines}\n  </varray>'


def _structure_xml(structure: Structure, name: str) -> str:
    return (
        f'  <structure name="{name}" >\n   <crystal>\n{_varray("basis", structure.lattice.matrix)}\n'
        f'   <i name="volume">{structure.volume:.8f} </i>\n   </crystal>\n{_varray("positions", structure.frac_coords)}\n'
        "  </structure>"
    )


def synthetic_vasprun(structure: Structure, energy: float) -> str:
    """A minimal vasprun.xml of a one-step run ending in ``structure`` with ``energy`` (eV), zero forces and stress.

    Written here from scratch (no VASP output is copied): enough for aiida-vasp's parser, so mock-vasp can answer.
    """
    species = [site.species_string for site in structure]
    types = sorted(set(species), key=species.index)
    atoms = "\n".join(f"    <rc><c>{e}</c><c>{types.index(e) + 1}</c></rc>" for e in species)
    energies = "".join(f'<i name="{n}">{energy:16.8f} </i>' for n in ("e_fr_energy", "e_wo_entrp", "e_0_energy"))
    return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<modeling>
 <generator><i name="program" type="string">vasp </i><i name="version" type="string">6.4.2 </i></generator>
 <parameters><separator name="electronic"><i type="int" name="ISPIN">1</i></separator></parameters>
 <atominfo>
  <atoms>{len(structure)}</atoms><types>{len(types)}</types>
  <array name="atoms" ><dimension dim="1">ion</dimension><field type="string">element</field>
   <field type="int">atomtype</field><set>
{atoms}
   </set></array>
 </atominfo>
{_structure_xml(structure, "initialpos")}
 <calculation>
  <scstep><energy>{energies}</energy></scstep>
{_structure_xml(structure, "")}
{_varray("forces", [[0.0, 0.0, 0.0]] * len(structure))}
{_varray("stress", [[0.0, 0.0, 0.0]] * 3)}
  <energy>{energies}</energy>
 </calculation>
{_structure_xml(structure, "finalpos")}
</modeling>
"""


def record_answer(calculation, registry: Path, energy: float) -> None:
    """Add a mock-vasp registry entry answering ``calculation``'s inputs: its own POSCAR back, with ``energy``."""
    entry = registry / f"case-{calculation.pk}"
    (entry / "inp").mkdir(parents=True)
    (entry / "out").mkdir()
    written = {name: calculation.base.repository.get_object_content(name) for name in ("INCAR", "KPOINTS", "POSCAR")}
    for name, text in written.items():
        (entry / "inp" / name).write_text(text)
    structure = Structure.from_str(written["POSCAR"], fmt="poscar")
    incar = {
        k.strip(): v.strip() for k, v in (line.split("=") for line in written["INCAR"].splitlines() if "=" in line)
    }
    (entry / "out" / "vasprun.xml").write_text(synthetic_vasprun(structure, energy))
    (entry / "out" / "OUTCAR").write_text(OUTCAR.format(nsw=incar.get("NSW", 0), ibrion=incar.get("IBRION", -1)))
    (entry / "out" / "CONTCAR").write_text(written["POSCAR"])
    (entry / "out" / "vasp_output").write_text(" running on    1 total cores\n")


def bi2se3_primitive() -> Structure:
    """Bi2Se3, R-3m, the 5-atom rhombohedral cell (|a| = 9.84 Å, α ≈ 24°): a skewed cell."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conventional = Structure.from_spacegroup(
        "R-3m", Lattice.hexagonal(4.14, 28.6), ["Bi", "Se", "Se"], [[0, 0, 0.4008], [0, 0, 0], [0, 0, 0.2117]]
    )
    return SpacegroupAnalyzer(conventional).get_primitive_standard_structure()


@pytest.fixture
def dummy_potcars(tmp_path):
    """A POTCAR family of header-only dummy files for Bi and Se, generated here (no VASP data involved)."""
    from aiida_vasp.data.potcar import PotcarData

    for element, zval, mass in (("Bi", 15, 208.98), ("Se", 6, 78.96)):
        folder = tmp_path / "potcars" / element
        folder.mkdir(parents=True)
        (folder / "POTCAR").write_text(DUMMY_POTCAR.format(element=element, zval=zval, mass=mass))
    if not orm.Group.collection.find(filters={"label": FAMILY}):
        PotcarData.upload_potcar_family(str(tmp_path / "potcars"), FAMILY, "dummy POTCARs for tests")
    return FAMILY


def test_kpoint_density_40_gives_the_reciprocal_length_meshes():
    """The meshes of aiida_notes.md §2.2: the same as aiida-vasp kpoints_spacing 0.025, whatever the cell's shape."""
    primitive = orm.StructureData(pymatgen=bi2se3_primitive())
    conventional = orm.StructureData(
        pymatgen=Structure.from_spacegroup(
            "R-3m", Lattice.hexagonal(4.143, 28.636), ["Bi", "Se", "Se"], [[0, 0, 0.4008], [0, 0, 0], [0, 0, 0.2117]]
        )
    )
    cubic = orm.StructureData(pymatgen=Structure(Lattice.cubic(3.3), ["Bi"], [[0, 0, 0]]))
    density = orm.Float(40)
    assert kpoints_from_density(primitive, density).get_kpoints_mesh()[0] == [12, 12, 12]
    assert kpoints_from_density(conventional, density).get_kpoints_mesh()[0] == [12, 12, 2]
    assert kpoints_from_density(cubic, density).get_kpoints_mesh()[0] == [13, 13, 13]
    with pytest.raises(ValueError, match="must be positive"):
        kpoints_from_density(cubic, orm.Float(0))


def _last_vasp_calculation():
    query = orm.QueryBuilder().append(
        orm.CalcJobNode, filters={"attributes.process_label": "VaspCalculation"}, tag="calc"
    )
    return query.order_by({"calc": {"id": "desc"}}).first(flat=True)


def _vasp_builder(code, family):
    batch = StructureBatchData.from_structures([bi2se3_primitive()])
    return RelaxWorkChain.get_builder_from_protocol(
        batch,
        code,
        engine="vasp",
        overrides={
            "vasp": {
                "potential_family": family,
                "options": {
                    "resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1},
                    "max_wallclock_seconds": 600,
                    "withmpi": False,
                },
                "relax_settings": {"convergence_on": False},
            }
        },
    )


@pytest.mark.slow
def test_vasp_engine_writes_the_paper_settings_and_runs_through_mock_vasp(
    aiida_code_installed, dummy_potcars, tmp_path
):
    registry = tmp_path / "registry"
    registry.mkdir()
    code = aiida_code_installed(
        label="mock-vasp-strict",  # not "mock-vasp": aiida-vasp presets would change settings for that label
        default_calc_job_plugin="vasp.vasp",
        filepath_executable=str(BIN / "mock-vasp"),
        prepend_text=f"export MOCK_VASP_REG_BASE={registry}",
    )
    # 1. No registry entry: mock-vasp refuses, the facade records the failure, the written inputs can be read.
    _, node = run_get_node(_vasp_builder(code, dummy_potcars))
    assert node.exit_status == RelaxWorkChain.exit_codes.ERROR_NONE_CONVERGED.status
    relaxed = node.outputs.relaxed
    assert relaxed.info("status").tolist() == ["failed"] and math.isnan(relaxed.info("total_energy")[0])
    assert node.outputs.summary["energy_scale"] == f"vasp:gga=pe:encut=500:{dummy_potcars}"
    calculation = _last_vasp_calculation()
    written = {name: calculation.base.repository.get_object_content(name) for name in ("INCAR", "KPOINTS", "POSCAR")}
    incar = dict(line.split(" = ") for line in written["INCAR"].strip().splitlines())
    assert incar == {
        "ENCUT": "500",
        "GGA": "pe",
        "PREC": "accurate",
        "ISPIN": "1",
        "ISMEAR": "0",
        "SIGMA": "0.05",
        "EDIFF": "1e-05",
        "LREAL": ".FALSE.",
        "LWAVE": ".FALSE.",
        "LCHARG": ".FALSE.",
        "IBRION": "2",
        "ISIF": "3",
        "NSW": "100",
        "EDIFFG": "-0.01",
    }
    kpoints = [line.split() for line in written["KPOINTS"].splitlines()]
    assert kpoints[1:5] == [["0"], ["Gamma"], ["12", "12", "12"], ["0.000000000"] * 3]
    poscar = Structure.from_str(written["POSCAR"], fmt="poscar")
    expected = bi2se3_primitive()
    assert poscar.lattice.matrix == pytest.approx(expected.lattice.matrix, abs=1e-8)
    assert [site.species_string for site in poscar] == [site.species_string for site in expected]
    assert poscar.cart_coords == pytest.approx(expected.cart_coords, abs=1e-6)

    # 2. mock-vasp answers each calculation from the registry: the facade runs to the end and normalises the result.
    for _ in range(3):  # the relaxation, then aiida-vasp's final static run: each needs its own entry
        record_answer(_last_vasp_calculation(), registry, energy=-20.0)
        _, node = run_get_node(_vasp_builder(code, dummy_potcars))
        if node.is_finished_ok:
            break
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    relaxed = node.outputs.relaxed
    assert relaxed.info("status").tolist() == ["converged"] and relaxed.info("exit_code").tolist() == [0]
    assert relaxed.info("total_energy").tolist() == [-20.0] and relaxed.info("energy_per_atom").tolist() == [-4.0]
    assert relaxed.get_structures()[0].composition.reduced_formula == "Bi2Se3"


@pytest.mark.slow
def test_secrets_stay_out_of_an_exported_archive(aiida_code_installed, dummy_potcars, tmp_path, monkeypatch):
    """Neither POTCAR content nor an API key in the environment reaches the provenance graph (attributes,
    repository files, logs): the exported archive of a VASP relaxation is searched for both."""
    import zipfile

    from aiida.tools.archive import create_archive

    secret = "mp-api-key-ccdcgan-test-7f3a9c1e5b"
    monkeypatch.setenv("MP_API_KEY", secret)
    code = aiida_code_installed(
        label="mock-vasp-secrets",
        default_calc_job_plugin="vasp.vasp",
        filepath_executable=str(BIN / "mock-vasp"),
        prepend_text=f"export MOCK_VASP_REG_BASE={tmp_path}",
    )
    _, node = run_get_node(_vasp_builder(code, dummy_potcars))
    archive = tmp_path / "relaxation.aiida"
    create_archive([node], filename=archive)
    with zipfile.ZipFile(archive) as opened:
        content = b"".join(opened.read(name) for name in opened.namelist())
    assert b"ENCUT = 500" in content and b"PAW_PBE Bi" in content  # the INCAR and the POTCAR titles are there
    potcar_body = [line.strip() for line in DUMMY_POTCAR.splitlines()[2:] if line.strip()]
    assert not [line for line in potcar_body if line.encode() in content]
    assert secret.encode() not in content
