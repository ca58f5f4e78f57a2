"""The compiled PEG keeps the token grid's layout through its backward (docs/compile.md, "The compiled PEG").

Left to its heuristic, inductor copies the gradient reaching the PEG's depth-wise convolution into a contiguous
NCHW grid before ``convolution_backward``; in bf16 on CUDA that layout sends the convolution to torch's native
depth-wise kernels rather than cuDNN's, the suspected cause of compiled ``peg`` trailing compiled ``learned``. The
layout choice is made in inductor's generated code, which a CPU shows as well as a GPU: these tests read it, with
oneDNN off so that inductor's layout heuristic takes the path it takes for a CUDA graph.
What torch does by default depends on its release: 2.14 copies; 2.11, the release of the one GPU measurement of the
gap, hands the view on by itself (read on a CPU, docs/compile.md).
"""
from __future__ import annotations

import re

import pytest
import torch
from torch._inductor.utils import run_and_get_code

from cpvt_lab.compiled.guard import compile_settings
from cpvt_lab.models.pos_encodings import GridResidual, peg_conv

BATCH, GRID, DIM = 4, (8, 8), 16
GRID_BUFFER = re.compile(rf"empty_strided_\w+\(\({BATCH}, {DIM}, {GRID[0]}, {GRID[1]}\)")


def compiled_backward_code(options: dict, project: bool) -> str:
    """Inductor's code for the backward of one PEG (class token + 8 x 8 grid) compiled with these settings."""
    torch.manual_seed(0)
    peg = GridResidual(peg_conv(DIM, 3, "zeros", "depthwise"), num_prefix_tokens=1)
    settings, _ = compile_settings(options=options, project=project)
    compiled = torch.compile(lambda x: peg(x, GRID), **settings)
    tokens = torch.randn(BATCH, 1 + GRID[0] * GRID[1], DIM, requires_grad=True)
    torch._dynamo.reset()
    # with oneDNN on, inductor's layout heuristic keeps channels-last for any CPU graph with a convolution; off,
    # it takes the path a CUDA graph takes
    with torch.backends.mkldnn.flags(enabled=False):
        _, codes = run_and_get_code(lambda: compiled(tokens).square().sum().backward())
    backward = [code for code in codes if "convolution_backward" in code]
    assert len(backward) == 1, f"expected one compiled backward with the PEG's convolution, got {len(backward)}"
    return backward[0]


@pytest.mark.skipif(not hasattr(torch._inductor.config, "force_layout_optimization"),
                    reason="this torch's inductor has no force_layout_optimization")
def test_the_projects_compile_hands_the_pegs_backward_the_token_layout_without_copying_it():
    code = compiled_backward_code(options={}, project=True)
    assert not GRID_BUFFER.search(code), "the PEG's backward copies its token grid into a conv layout"


# whether torch's default compile copies the PEG's gradient, as read on these releases; a later one is expected to
# do as 2.14 does (this test says when it stops), an earlier or in-between one is not judged
READ = {(2, 11): False, (2, 14): True}
RELEASE = tuple(int(part) for part in torch.__version__.split(".")[:2])
COPIES_BY_DEFAULT = READ.get(RELEASE, READ[(2, 14)] if RELEASE > (2, 14) else None)


@pytest.mark.skipif(COPIES_BY_DEFAULT is None, reason=f"torch {torch.__version__}'s default layout not yet read")
def test_torchs_default_compile_copies_the_pegs_gradient_or_not_as_its_release_was_read():
    # the control: the project's compile less that one option (what the option exists to avoid), and torch's defaults
    for options, project in (({"force_layout_optimization": False}, True), ({}, False)):
        code = compiled_backward_code(options=options, project=project)
        assert bool(GRID_BUFFER.search(code)) == COPIES_BY_DEFAULT, (
            f"torch {torch.__version__}'s default compile {'no longer copies' if COPIES_BY_DEFAULT else 'copies'} "
            "the PEG's gradient: read its generated code again and update docs/compile.md")
