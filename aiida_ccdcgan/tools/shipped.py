"""The shipped Bi–Se database in the provenance graph: a training file and a queryable Group, stored once."""

from __future__ import annotations

import gzip
import hashlib
import io

from aiida import orm

from ..dataset.shipped import BISE_DATABASE, bise_build_record
from .datasets import import_dataset

SHIPPED_EXTRA = "ccdcgan_shipped"


def bise_database(group_label: str = "bise-sevennet") -> tuple[orm.SinglefileData, orm.Group]:
    """The shipped Bi–Se database as an extended XYZ SinglefileData (the training input of ``ccdcgan.train`` and
    ``ccdcgan.inverse_design``) and as the Group ``group_label`` of StructureData; both stored on first use and
    found again afterwards."""
    content = gzip.decompress(BISE_DATABASE.read_bytes())
    digest = hashlib.sha256(content).hexdigest()
    query = orm.QueryBuilder().append(orm.SinglefileData, filters={f"extras.{SHIPPED_EXTRA}": digest})
    dataset = query.first(flat=True)
    if dataset is None:
        dataset = orm.SinglefileData(io.BytesIO(content), filename="bise_sevennet.extxyz")
        dataset.description = f"aiida-ccdcgan's Bi–Se database: {bise_build_record()['stored']} crystals, SevenNet-0"
        dataset.store()
        dataset.base.extras.set(SHIPPED_EXTRA, digest)
    report = import_dataset("extxyz", BISE_DATABASE, group_label)
    return dataset, orm.load_group(report.group_label)
