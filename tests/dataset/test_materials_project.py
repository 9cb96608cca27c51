"""The Materials Project import: the official client (mp-api) against recorded responses, as there is no network here.

``responses`` answers the client's HTTP requests from tests/data/mp_li_co_o.json (the heartbeat and one summary page
in the API's format) and records what was asked, so the tests see the real client build its query, send the key and
read the documents.
"""

import copy
import json
import re
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from aiida_ccdcgan.dataset.materials_project import MaterialsProjectQuery, fetch_materials_project
from aiida_ccdcgan.errors import DatasetError

RECORDING = json.loads((Path(__file__).parents[1] / "data" / "mp_li_co_o.json").read_text())
API_KEY = "k" * 32
SUMMARY = re.compile(r"https://api\.materialsproject\.org/materials/summary/.*")


@pytest.fixture
def materials_project(monkeypatch):
    """The Materials Project as recorded, with an API key in the environment; yields (mock, summary body to edit)."""
    monkeypatch.setenv("MP_API_KEY", API_KEY)
    summary = copy.deepcopy(RECORDING["summary"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.GET, "https://api.materialsproject.org/heartbeat", json=RECORDING["heartbeat"])
        mock.add_callback(responses.GET, SUMMARY, callback=lambda request: (200, {}, json.dumps(summary)))
        yield mock, summary


def summary_requests(mock) -> list:
    """The summary requests the client sent."""
    return [call.request for call in mock.calls if SUMMARY.match(call.request.url)]


def test_entries_of_the_system_and_its_subsystems(materials_project):
    mock, _ = materials_project
    records, version = fetch_materials_project(MaterialsProjectQuery("O-Li-Co"))
    assert version == "2025.09.25"
    assert [r.source_id for r in records] == ["mp-102", "mp-135", "mp-1960", "mp-12957", "mp-19128", "mp-22526"]
    by_id = {r.source_id: r for r in records}
    assert by_id["mp-22526"].structure.composition.reduced_formula == "LiCoO2"
    assert by_id["mp-22526"].formation_energy == pytest.approx(-1.78)
    assert by_id["mp-1960"].properties == {
        "e_above_hull_mp": 0.0,
        "formula": "Li2O",
        "energy_scale": "MP2020 (GGA/GGA+U, DFT)",
    }
    (request,) = summary_requests(mock)
    assert "chemsys=Co%2CLi%2CO%2CCo-Li%2CCo-O%2CLi-O%2CCo-Li-O" in request.url and "nsites_max=20" in request.url
    assert request.headers["x-api-key"] == API_KEY

    fetch_materials_project(
        MaterialsProjectQuery("Li-Co-O", max_sites=8, include_subsystems=False, max_e_above_hull=0.05)
    )
    request = summary_requests(mock)[-1]
    assert (
        "chemsys=Co-Li-O&" in request.url
        and "nsites_max=8" in request.url
        and "energy_above_hull_max=0.05" in request.url
    )


@pytest.mark.parametrize(
    ("system", "message"),
    [("Li-Xx-O", "not a chemical system"), ("", "not a chemical system"), ("Li-Li", "not a chemical system")],
)
def test_bad_chemical_systems_are_refused(system, message):
    with pytest.raises(DatasetError, match=message):
        MaterialsProjectQuery(system)


def test_refusals_name_the_problem(materials_project, monkeypatch):
    mock, summary = materials_project
    summary["data"][5]["structure"]["sites"][1]["abc"] = summary["data"][5]["structure"]["sites"][0]["abc"]
    with pytest.raises(DatasetError, match="Materials Project entry mp-22526: .*apart"):
        fetch_materials_project(MaterialsProjectQuery("Li-Co-O"))

    mock.replace(responses.GET, SUMMARY, json={"error": "invalid api key"}, status=401)
    with pytest.raises(DatasetError, match="The Materials Project refused or could not be reached"):
        fetch_materials_project(MaterialsProjectQuery("Li-Co-O"))

    monkeypatch.delenv("MP_API_KEY")
    with pytest.raises(DatasetError, match="Set your Materials Project API key in the environment variable MP_API_KEY"):
        fetch_materials_project(MaterialsProjectQuery("Li-Co-O"))


def test_import_command_stores_the_entries_once_and_never_the_key(materials_project, aiida_profile, group_label):
    from aiida import orm

    from aiida_ccdcgan.cli import cmd_root

    def run(*args):
        return CliRunner().invoke(cmd_root, ["-p", aiida_profile.name, "import", "mp", *args], catch_exceptions=False)

    first = run("Li-Co-O", "--group", group_label)
    assert first.exit_code == 0, first.output
    assert f"Imported 6 structures from the Materials Project (Co-Li-O) into group '{group_label}'" in first.output
    group = orm.load_group(group_label)
    info = group.base.extras.get("ccdcgan_import")
    assert (info["format"], info["database_version"], info["count"]) == ("mp", "2025.09.25", 6)
    assert API_KEY not in json.dumps(group.base.extras.all)
    energies = {
        node.base.extras.get("source_id"): node.base.extras.get("formation_energy_per_atom") for node in group.nodes
    }
    assert energies["mp-22526"] == pytest.approx(-1.78) and energies["mp-135"] == 0.0

    again = run("Li-Co-O", "--group", group_label)
    assert again.exit_code == 0 and "Already imported" in again.output and group.count() == 6

    materials_project[1]["data"][3]["formation_energy_per_atom"] = -2.0  # a newer answer: not the same import
    other = run("Li-Co-O", "--group", group_label)
    assert other.exit_code == 1 and "already holds a different import" in other.output and group.count() == 6
