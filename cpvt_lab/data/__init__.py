"""The data a run trains on: CIFAR-10 (canonical or the JPEG copy) in memory, and any ImageFolder tree.

The data modules are re-exported here, so a config's ``_target_: cpvt_lab.data.<Module>``
(and every recorded run's) names them whichever file holds them.
"""
from .arrays import Arrays
from .batches import TensorBatches
from .cifar import Cifar10DataModule, Cifar10JpegDataModule
from .errors import DataError
from .imagefolder import ImageFolderDataModule
from .memory import ArrayDataModule

__all__ = ["ArrayDataModule", "Arrays", "Cifar10DataModule", "Cifar10JpegDataModule", "DataError",
           "ImageFolderDataModule", "TensorBatches"]
