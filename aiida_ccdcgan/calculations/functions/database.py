"""Calcfunctions of the database builder: templates substituted with the elements of a system, the chunks of a
build and their relaxed batches joined again."""

from aiida import orm
from aiida.engine import calcfunction

from ...data.structures import StructureBatchData


@calcfunction
def substitute_templates(templates: StructureBatchData, elements: orm.List, limits: orm.Dict) -> StructureBatchData:
    """Every element assignment of every template (``substitute``), bond-rescaled, within ``limits`` (TemplateFilter).

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


@calcfunction
def crystals_as_given(templates: StructureBatchData, elements: orm.List, limits: orm.Dict) -> StructureBatchData:
    """The templates themselves, those within ``limits`` (TemplateFilter), for a database of known crystals of the
    system (e.g. imported from the Materials Project) relaxed with the loop's engine; the same columns as
    :func:`substitute_templates` (``assignment`` 0: none). ``elements``: the system, which every template is of
    (``ccdcgan.database`` checks that first)."""
    from ...dataset.templates import TemplateFilter, within_limits

    template_filter, kept = TemplateFilter(**limits.get_dict()), []
    for name, structure in zip(templates.info("source_id").tolist(), templates.get_structures()):
        if within_limits(structure, template_filter):
            kept.append((str(name), structure))
    if not kept:
        raise ValueError("No crystal is within the limits; give more crystals or wider limits.")
    info = {"source_id": [n for n, _ in kept], "template": [n for n, _ in kept], "assignment": [0] * len(kept)}
    return StructureBatchData.from_structures([s for _, s in kept], info)


@calcfunction
def batch_slice(batch: StructureBatchData, start: orm.Int, stop: orm.Int) -> StructureBatchData:
    """Crystals ``start`` to ``stop`` (exclusive) of ``batch``: one chunk of a database build."""
    return batch.slice(start.value, stop.value)


@calcfunction
def concatenate_batches(**batches: StructureBatchData) -> StructureBatchData:
    """The crystals of ``batches`` in the order of their labels (``chunk_0000``, ``chunk_0001``, …) as one batch."""
    return StructureBatchData.concatenate([batches[label] for label in sorted(batches)])
