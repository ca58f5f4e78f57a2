"""The data a run trains on: CIFAR-10 (canonical or the JPEG copy) in memory, or any ImageFolder tree."""
# The data modules are re-exported here: configs, and the config of every recorded run, name them
# ``_target_: cpvt_lab.data.<Module>``, whichever file of this package holds them.
from .arrays import Arrays
from .batches import TensorBatches
from .cifar import Cifar10DataModule, Cifar10JpegDataModule
from .errors import DataError
from .imagefolder import ImageFolderDataModule
from .memory import ArrayDataModule

__all__ = ["ArrayDataModule", "Arrays", "Cifar10DataModule", "Cifar10JpegDataModule", "DataError",
           "ImageFolderDataModule", "TensorBatches"]
