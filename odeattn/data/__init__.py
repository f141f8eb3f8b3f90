"""Datasets as uint8 image tensors: digits (embedded), synthetic, CIFAR-10/100, SVHN, STL-10, MNIST.

Files are read in their published layouts from ``root=``, ``$ODEATTN_DATA`` or ``./data``; nothing
is unpickled. Augmentation runs per batch on the data's device.
"""

from odeattn.data._augment import BatchTransform
from odeattn.data._datasets import (
    DATASETS,
    Dataset,
    DatasetFileError,
    DatasetInfo,
    Split,
    load_dataset,
)

__all__ = [
    "DATASETS",
    "BatchTransform",
    "Dataset",
    "DatasetFileError",
    "DatasetInfo",
    "Split",
    "load_dataset",
]
