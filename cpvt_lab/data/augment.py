"""Per-image random augmentation of a uint8 batch on its device: TrivialAugment-Wide or RandAugment."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import RandAugment, TrivialAugmentWide
from torchvision.transforms.v2.functional import equalize

# torchvision's spaces: {op name: (magnitudes(num_bins, height, width) or None, signed)}
SPACES = {"trivialaugment": TrivialAugmentWide._AUGMENTATION_SPACE, "randaugment": RandAugment._AUGMENTATION_SPACE}
POLICIES = tuple(SPACES)
OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
       "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
OP = {name: i for i, name in enumerate(OPS)}
NUM_BINS = 31  # torchvision's num_magnitude_bins default; RandAugment's magnitude M indexes these bins
MAX_MAGNITUDE = NUM_BINS - 1


@functools.lru_cache(maxsize=16)
def magnitude_table(policy: str, height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(magnitudes, signed): the policy's magnitude bins of each op in OPS (len(OPS) x NUM_BINS, zeros for ops
    without one) and whether a random sign applies to it."""
    space = SPACES[policy]
    assert tuple(space) == OPS, f"torchvision's {policy} ops changed: {tuple(space)}"
    bins = [fn(NUM_BINS, height, width) for fn, _ in space.values()]
    table = torch.stack([torch.zeros(NUM_BINS) if m is None else m.float() for m in bins])
    signed = torch.tensor([s for _, s in space.values()])
    return table.to(device), signed.to(device)


def draw_ops(policy: str, batch: torch.Tensor, generator: torch.Generator,
             magnitude_bin: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: an op index into OPS and its signed magnitude. TrivialAugment draws the bin per image
    (``magnitude_bin=None``); RandAugment passes its fixed M. Signs as torchvision: negative with p 0.5."""
    b, device = batch.shape[0], batch.device
    table, signed = magnitude_table(policy, batch.shape[-2], batch.shape[-1], device)
    op = torch.randint(0, len(OPS), (b,), device=device, generator=generator)
    bins = (torch.randint(0, NUM_BINS, (b,), device=device, generator=generator) if magnitude_bin is None
            else torch.full((b,), magnitude_bin, device=device))
    negative = (torch.rand(b, device=device, generator=generator) <= 0.5) & signed[op]
    magnitude = table[op, bins]
    return op, torch.where(negative, -magnitude, magnitude)


# ---------------------------------------------------------------- geometry: one affine warp for the batch
def inverse_affine(angle: torch.Tensor, translate: torch.Tensor, shear: torch.Tensor,
                   center: torch.Tensor) -> torch.Tensor:
    """Per-image B x 2 x 3 output-to-input matrices in pixels about the image centre: torchvision's
    ``_get_inverse_affine_matrix`` (scale 1) with tensors, angles in radians."""
    sx, sy = shear.unbind(-1)
    cx, cy = center.unbind(-1)
    tx, ty = translate.unbind(-1)
    a = torch.cos(angle - sy) / torch.cos(sy)
    b = -(a * torch.tan(sx) + torch.sin(angle))
    c = torch.sin(angle - sy) / torch.cos(sy)
    d = torch.cos(angle) - c * torch.tan(sx)
    x0 = cx - d * (cx + tx) + b * (cy + ty)
    y0 = cy + c * (cx + tx) - a * (cy + ty)
    return torch.stack([torch.stack([d, -b, x0], -1), torch.stack([-c, a, y0], -1)], -2)


def warp(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour warp of float images by per-image ``inverse_affine`` matrices, fill 0: torchvision's
    ``_affine_grid`` and ``_apply_grid_transform`` (its default fill None) with one grid per image."""
    _, _, h, w = images.shape
    device, dtype = images.device, images.dtype
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=device, dtype=dtype)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=device, dtype=dtype)
    base = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, device=device, dtype=dtype)], -1)
    # not torch.tensor([...]) nor item assignment: both copy a value from the host, which syncs on a GPU
    scale = torch.stack([torch.full((), 0.5 * w, device=device, dtype=dtype),
                         torch.full((), 0.5 * h, device=device, dtype=dtype)])
    grid = base.view(1, h * w, 3) @ (theta.transpose(1, 2) / scale)  # pixels to grid_sample's [-1, 1]
    return F.grid_sample(images, grid.view(-1, h, w, 2), mode="nearest", padding_mode="zeros", align_corners=False)


def geometric(images: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Shear, translate and rotate as torchvision's affine/rotate calls in its auto-augment ops; every other
    op gets the identity matrix, whose nearest-neighbour warp returns the image unchanged."""
    _, _, h, w = images.shape
    # torchvision builds its matrix in Python floats: float64 here too, or a pixel centre that lands exactly
    # between two source pixels may round the other way (MPS has no float64)
    magnitude = magnitude.to(torch.float32 if magnitude.device.type == "mps" else torch.float64)
    zero = torch.zeros_like(magnitude)
    is_op = {name: op == OP[name] for name in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")}
    # shear by angle atan(m) about the top-left corner (torchvision's center=[0, 0])
    shear = torch.stack([torch.where(is_op["ShearX"], torch.atan(magnitude), zero),
                         torch.where(is_op["ShearY"], torch.atan(magnitude), zero)], -1)
    corner = is_op["ShearX"] | is_op["ShearY"]
    center = torch.stack([torch.where(corner, -0.5 * w, zero), torch.where(corner, -0.5 * h, zero)], -1)
    translate = torch.stack([torch.where(is_op["TranslateX"], magnitude.trunc(), zero),  # torchvision's int(m)
                             torch.where(is_op["TranslateY"], magnitude.trunc(), zero)], -1)
    angle = torch.where(is_op["Rotate"], -torch.deg2rad(magnitude), zero)  # rotate() passes -angle to the matrix
    return warp(images, inverse_affine(angle, translate, shear, center).to(images.dtype))


# ---------------------------------------------------------------- colour: torchvision's uint8 kernels, per-image factors
# The blends take the magnitude m of factor 1 + m: torchvision's weight 1 - factor is then exactly -m, as in its
# float32 kernels, and addcmul rounds once where its add(..., alpha=) does, so a pixel rounds the way
# torchvision's does (its cast to uint8 truncates: floor() here).
def _blend(images: torch.Tensor, degenerate: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(images * (1.0 + m), degenerate, -m).clamp(0, 255).floor()


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.unbind(-3)
    return r.mul(0.2989).add(g, alpha=0.587).add(b, alpha=0.114).unsqueeze(-3).floor()  # torchvision's, op for op


def _sharpness(images: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """torchvision's adjust_sharpness: blend with a 3x3 smoothing of the image, border pixels kept."""
    # torchvision convolves with [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13; the 3x3 sum of shifted slices is exact
    # on whole numbers (and several times faster than a depthwise conv on a CPU), and k / 13 is never half-way
    # between integers, so both round to the same value
    inner = images[..., 1:-1, 1:-1]
    rows = images[..., :-2, :] + images[..., 1:-1, :] + images[..., 2:, :]
    box = rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]
    blurred = ((box + 4.0 * inner) / 13.0).round()
    out = images.clone()
    out[..., 1:-1, 1:-1] = torch.addcmul(inner, blurred - inner, -m)
    return out.clamp(0, 255).floor()


def _autocontrast(images: torch.Tensor) -> torch.Tensor:
    """torchvision's autocontrast (each channel stretched to 0..255; flat channels kept), without its
    boolean-mask assignment."""
    low = images.amin(dim=(-2, -1), keepdim=True)
    high = images.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    low = torch.where(flat, 0.0, low)
    inv_scale = torch.where(flat, 1.0, (high - low) * (1.0 / 255))
    return ((images - low) / inv_scale).clamp(0, 255).floor()


def apply_ops(images: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Image i of a uint8 B x 3 x H x W batch transformed by op ``OPS[op[i]]`` at signed ``magnitude[i]``,
    with the meaning torchvision's auto-augment ops give the magnitude. Returns uint8, same device.

    Each op is computed for the whole batch with per-image parameters and kept, with
    ``torch.where``, only for the images that drew it: at 32 px that costs a few passes
    over the batch, and it avoids the host sync that boolean indexing would add.
    """
    x = geometric(images.float(), op, magnitude)
    per_image = magnitude.view(-1, 1, 1, 1)
    chosen = op.view(-1, 1, 1, 1)
    gray = _grayscale(x)
    colour = {
        "Brightness": lambda: (x * (1.0 + per_image)).clamp(0, 255).floor(),
        "Color": lambda: _blend(x, gray, per_image),
        "Contrast": lambda: _blend(x, gray.mean(dim=(-3, -2, -1), keepdim=True), per_image),
        "Sharpness": lambda: _sharpness(x, per_image),
        # keep the top int(m) bits: dividing integers 0..255 by a power of two is exact in float
        "Posterize": lambda: (x / 2.0 ** (8 - per_image.trunc())).floor() * 2.0 ** (8 - per_image.trunc()),
        "Solarize": lambda: torch.where(x >= 255.0 * per_image, 255.0 - x, x),
        "AutoContrast": lambda: _autocontrast(x),
        "Equalize": lambda: equalize(x.to(torch.uint8)).float(),  # torchvision's kernel is batched already
    }
    for name, transformed in colour.items():
        x = torch.where(chosen == OP[name], transformed(), x)
    return x.to(torch.uint8)


class RandomAugment:
    """TrivialAugment-Wide (one op per image, its magnitude bin drawn per image) or RandAugment
    (``num_ops`` rounds of one op per image at magnitude bin ``magnitude``) on uint8 batches.

    TrivialAugment-Wide (Müller & Hutter 2021) and RandAugment (Cubuk et al. 2020) with
    torchvision's op lists and magnitude ranges (read from torchvision itself). Every image
    draws its own op and magnitude from the caller's ``torch.Generator``; nothing loops over
    images and nothing reads a value back to the host, so a CUDA batch stays queued on the GPU.
    """

    def __init__(self, policy: str, num_ops: int = 2, magnitude: int = 9):
        if policy not in SPACES:
            raise ValueError(f"unknown policy {policy!r}; valid: {', '.join(POLICIES)}")
        self.policy = policy
        self.rounds, self.magnitude_bin = (1, None) if policy == "trivialaugment" else (num_ops, magnitude)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for _ in range(self.rounds):
            images = apply_ops(images, *draw_ops(self.policy, images, generator, self.magnitude_bin))
        return images
