"""Calcfunctions of the database builder: templates substituted with two elements."""

from aiida import orm
from aiida.engine import calcfunction

from ...data.structures import StructureBatchData


@calcfunction
def substitute_templates(templates: StructureBatchData, elements: orm.List, limits: orm.Dict) -> StructureBatchData:
    """Both element assignments of every binary template, bond-rescaled, within ``limits`` (TemplateFilter).

    ``templates`` needs an info column ``source_id``; the result has ``source_id`` (``<template>_copy<k>``),
    ``template`` and ``assignment`` columns.
    """
    from ...dataset.records import CrystalRecord
    from ...dataset.templates import TemplateFilter, substituted_records

    records = [
        CrystalRecord(source_id=str(name), structure=structure, group_key=str(name))
        for name, structure in zip(templates.info("source_id").tolist(), templates.get_structures())
    ]
    substituted = substituted_records(records, elements.get_list(), TemplateFilter(**limits.get_dict()))
    if not substituted:
        raise ValueError("No substituted crystal is within the limits; give more templates or wider limits.")
    info = {
        "source_id": [r.source_id for r in substituted],
        "template": [r.properties["template"] for r in substituted],
        "assignment": [r.properties["assignment"] for r in substituted],
    }
    return StructureBatchData.from_structures([r.structure for r in substituted], info)
