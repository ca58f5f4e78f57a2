"""The ViT and its position-encoding plug-ins. Every module of this package is imported here, so that a new
position encoding registers itself in ``POSITION_ENCODINGS`` from its own module (as ``rope.py`` does)."""
import importlib
import pkgutil

from .pos_encodings import POSITION_ENCODINGS, Geometry, PositionEncoding, build_position_encoding
from .rope import AxialRope, MixedRope, WithRope  # registers rope_axial, rope_mixed and peg_rope
from .vit import HEADS, SIZES, CPVTViT, count_parameters, load_timm_state_dict, timm_state_dict_to_cpvt

__all__ = [
    "POSITION_ENCODINGS", "Geometry", "PositionEncoding", "build_position_encoding", "AxialRope", "MixedRope",
    "WithRope", "HEADS", "SIZES", "CPVTViT", "count_parameters", "load_timm_state_dict", "timm_state_dict_to_cpvt",
]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
