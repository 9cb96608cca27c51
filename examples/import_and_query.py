"""Import the V–O dataset, split it by template, and query it: run with `verdi run examples/import_and_query.py`.

Uses the default AiiDA profile (`verdi presto` makes one). Running it again reuses what is already stored.
"""

import os
from pathlib import Path

from aiida import orm

from aiida_ccdcgan.common import extras
from aiida_ccdcgan.tools.datasets import dataset_summary, import_dataset, split_dataset_group

DATASET = Path(
    os.environ.get("CCDCGAN_DATASET", Path(__file__).resolve().parents[2] / "shared/data/vo_imatgen_dft.csv.gz")
)

report = import_dataset("vo-csv", DATASET, "vo-imatgen")
print(report.message)
summary = dataset_summary(report.group_label)
print(
    f"{summary['structures']} structures, {summary['group_keys']} templates, "
    f"E_f {summary['formation_energy_per_atom']['min']} … {summary['formation_energy_per_atom']['max']} eV/atom"
)

parts = split_dataset_group(report.group_label, key=extras.GROUP_KEY, fractions=(0.8, 0.1, 0.1), seed=0)
for name, group in parts.items():
    print(f"{name:>10}: {group.count()} structures ({group.label})")

builder = orm.QueryBuilder().append(orm.Group, filters={"label": parts["test"].label}, tag="group")
builder.append(
    orm.StructureData, with_group="group", project=[f"extras.{extras.FORMULA}", f"extras.{extras.FORMATION_ENERGY}"]
)
builder.order_by({orm.StructureData: {f"extras.{extras.FORMATION_ENERGY}": {"order": "asc", "cast": "f"}}}).limit(5)
print("Most stable test structures:", builder.all())
