"""AiiDA data types of aiida-ccdcgan: trained Keras models and batches of structures."""

from .model import KerasModelData, ModelFileError
from .structures import StructureBatchData

__all__ = ("KerasModelData", "ModelFileError", "StructureBatchData")
