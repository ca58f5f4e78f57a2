from .pos_encodings import POSITION_ENCODINGS, Geometry, PositionEncoding, build_position_encoding
from .vit import HEADS, SIZES, CPVTViT, count_parameters, load_timm_state_dict, timm_state_dict_to_cpvt

__all__ = [
    "POSITION_ENCODINGS", "Geometry", "PositionEncoding", "build_position_encoding",
    "HEADS", "SIZES", "CPVTViT", "count_parameters", "load_timm_state_dict", "timm_state_dict_to_cpvt",
]
