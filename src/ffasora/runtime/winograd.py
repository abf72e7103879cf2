"""Winograd F(4x4, 3x3) convolution for CPU inference: the WF-VAE's 3x3 convolutions with 4x fewer products.

Why: a WF-VAE decode is ~90 % 3x3(x3) convolutions and oneDNN already runs them at this CPU's fp32 peak,
so the only way to be much faster in fp32 is to do fewer multiplications. Winograd's minimal filtering
algorithm (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks") computes a 4x4 output
tile from a 6x6 input tile with 36 products per input/output channel pair instead of 144, via three linear
maps: the filter transform ``U = G g G^T``, the input transform ``V = B^T d B`` and the output transform
``Y = A^T (U . V) A``. Summed over input channels, the products ``U . V`` become 36 independent matrix
products (one per tile position), which oneDNN runs as ordinary convolutions; the causal temporal taps of a
3x3x3 kernel stay inside those products as a (k_t x 1) kernel, so a 3D convolution costs the same 36 calls.

Accuracy: the interpolation points (0, 1, -1, 1/2, -1/2, inf) keep the transforms' constants small (Barabasz
et al. 2020, "Error analysis and improving the accuracy of Winograd convolution"). Measured on random
WF-VAE-S weights (21x128x128 and 5x512x512), encode and decode outputs move by at most 3e-5 against direct
fp32 convolution, inside the 1e-4 budget; larger tiles, whose error grows quickly with the tile size, are
not offered for that reason.

The transforms are cheap arithmetically but touch every element several times; they are compiled once per
process with ``torch.compile`` when a C++ compiler is present (measured 7-15 s with inductor's on-disk cache
warm, 20-50 s the first time on a machine) and otherwise run eagerly, which is correct but slower than
direct convolution. Only inference uses this path (training keeps autograd's direct convolution); it is
switched on per model by :func:`ffasora.runtime.cpu.enable_cpu_inference` (``winograd=True``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction

import torch
import torch.nn.functional as F

OUTPUT_TILE = 4  # m: output pixels per tile side
KERNEL = 3  # r: the spatial kernel this module handles
POINTS = (Fraction(0), Fraction(1), Fraction(-1), Fraction(1, 2), Fraction(-1, 2))  # + infinity
# Below these sizes direct convolution wins (transforms dominate, or oneDNN's small-channel kernels are
# already memory-bound); measured on the WF-VAE-S layer shapes.
MIN_CHANNELS = 64
MIN_SIDE = 64
# Tile rows per block: bounds the transformed input/output held at once (V and M are 2.25x the activation
# they come from), so the fast path adds ~0.1 GB at 512x512 rather than several times an activation.
BLOCK_TILE_ROWS = 16
COMPILE = True  # tests switch this off: the maths is the same, compiling takes tens of seconds


def _poly_coefficients(roots: list[Fraction], length: int) -> list[Fraction]:
    """Ascending coefficients of prod (x - root), zero-padded to ``length``."""
    coeffs = [Fraction(1)]
    for root in roots:
        shifted = [Fraction(0)] + coeffs  # x * p(x)
        coeffs = [s - root * c for s, c in zip(shifted, coeffs + [Fraction(0)], strict=True)]
    return coeffs + [Fraction(0)] * (length - len(coeffs))


@functools.cache
def transform_matrices(
    m: int = OUTPUT_TILE, r: int = KERNEL, points: tuple[Fraction, ...] = POINTS
) -> tuple[list[list[float]], list[list[float]], list[list[float]]]:
    """Exact Toom-Cook matrices ``(A^T (m, n), G (n, r), B^T (n, n))`` for correlation F(m, r), n = m + r - 1.

    Finite points p_j and one point at infinity: ``A^T[i, j] = p_j^i``; ``G[j, k] = p_j^k / prod_{l != j}
    (p_j - p_l)``; row j of ``B^T`` holds the coefficients of ``prod_{l != j} (x - p_l)``, and the infinity
    rows/columns pick the leading coefficients. Then ``y = A^T [(G g) * (B^T d)]`` equals
    ``y_i = sum_k g_k d_{i + k}`` for any d (length n) and g (length r).
    """
    n = m + r - 1
    if len(points) != n - 1:
        raise ValueError(f"F({m}, {r}) needs {n - 1} finite points, got {len(points)}")
    a_t = [[float(p**i) for p in points] + [1.0 if i == m - 1 else 0.0] for i in range(m)]
    g, b_t = [], []
    for j, p in enumerate(points):
        others = [q for l_, q in enumerate(points) if l_ != j]
        norm = Fraction(1)
        for q in others:
            norm *= p - q
        g.append([float(p**k / norm) for k in range(r)])
        b_t.append([float(c) for c in _poly_coefficients(others, n)])
    g.append([1.0 if k == r - 1 else 0.0 for k in range(r)])
    b_t.append([float(c) for c in _poly_coefficients(list(points), n)])
    return a_t, g, b_t


A_T, G_MATRIX, B_T = transform_matrices()


def _combine(coefficients: list[float], tensors: list[torch.Tensor]) -> torch.Tensor:
    """``sum_i coefficients[i] * tensors[i]`` over the non-zero coefficients (traced into one kernel)."""
    terms = [(c, t) for c, t in zip(coefficients, tensors, strict=True) if c]
    total = terms[0][0] * terms[0][1]
    for c, t in terms[1:]:
        total = total + c * t
    return total


def _input_transform(x: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Padded (T, 4 rows + 2, 4 cols + 2, C) -> V (36, T, rows, cols, C)."""
    b_t, m, n = B_T, OUTPUT_TILE, len(B_T)
    row_views = [x[:, i : i + m * (rows - 1) + 1 : m] for i in range(n)]  # (T, rows, W', C)
    rows_t = [_combine(b_t[r], row_views) for r in range(n)]
    out = []
    for y in rows_t:
        col_views = [y[:, :, j : j + m * (cols - 1) + 1 : m] for j in range(n)]  # (T, rows, cols, C)
        out += [_combine(b_t[s], col_views) for s in range(n)]
    return torch.stack(out)


def _output_transform(products: list[torch.Tensor], bias: torch.Tensor) -> torch.Tensor:
    """36 x (T, rows, cols, O) tile products -> (T, 4*rows, 4*cols, O), bias added."""
    a_t, m, n = A_T, len(A_T), len(A_T[0])
    t, rows, cols, o = products[0].shape
    partial = [[_combine(a_t[p], products[s::n]) for s in range(n)] for p in range(m)]  # (T, r, c, O)
    out = [torch.stack([_combine(a_t[q], partial[p]) + bias for q in range(m)], dim=3) for p in range(m)]
    return torch.stack(out, dim=2).reshape(t, rows * m, cols * m, o)  # (T, rows, 4, cols, 4, O)


def _transforms() -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """The two transforms: compiled (see module docstring) unless ``COMPILE`` is off."""
    return _compiled_transforms() if COMPILE else (_input_transform, _output_transform)


@functools.cache
def _compiled_transforms() -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    """The two transforms compiled with inductor when it works here, else eager."""
    try:
        compiled_in = torch.compile(_input_transform, dynamic=True)
        compiled_out = torch.compile(_output_transform, dynamic=True)
        # Fail here, once, rather than in the middle of a decode. The compiler specialises on sizes 0
        # and 1 and on inference vs. ordinary tensors; winograd_conv only ever passes sizes >= 2 and
        # inference tensors, so this one probe is the only compilation.
        with torch.inference_mode():
            # Distinct sizes too, or "duck sizing" would assume equal dimensions stay equal.
            probe = compiled_in(torch.zeros(2, 14, 22, 8), 3, 5)  # (T, rows, cols, C) = (2, 3, 5, 8)
            compiled_out([p.contiguous() for p in probe[:, :, :, :, :4].unbind(0)], torch.zeros(4))
        return compiled_in, compiled_out
    except Exception:  # no C++ compiler, unsupported platform: same maths, eager
        return _input_transform, _output_transform


def filter_transform(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, k_t, 3, 3) -> U (36, O * k_t, C): ``U = G g G^T`` for every (o, t, c), position-major.

    ``U[p].view(O, k_t, C)`` is then a channels-last (O, C, k_t, 1) convolution weight that oneDNN takes
    without a copy. One product with ``G (x) G`` (36 x 9) over all filters: ~0.1 s for a 640x640 layer.
    """
    g_mat = torch.tensor(G_MATRIX, dtype=weight.dtype)  # (6, 3)
    kron = torch.kron(g_mat, g_mat)  # (36, 9): U[i, j] = sum_kl G[i, k] G[j, l] g[k, l]
    o, c, t = weight.shape[:3]
    taps = weight.permute(0, 2, 3, 4, 1).reshape(o * t, 9, c)  # a view for channels-last weights
    return torch.einsum("pk,nkc->pnc", kron, taps)


def eligible(
    x: torch.Tensor, weight: torch.Tensor, stride: tuple[int, ...], padding: tuple[int, ...]
) -> bool:
    """Whether :func:`winograd_conv` applies to this convolution (and pays off)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not (torch.is_grad_enabled() and weight.requires_grad)
        and tuple(weight.shape[-2:]) == (KERNEL, KERNEL)
        and all(s == 1 for s in stride)
        and tuple(padding[-2:]) == (1, 1)
        and min(weight.shape[0], weight.shape[1]) >= MIN_CHANNELS
        and min(x.shape[-2:]) >= MIN_SIDE
        and _output_frames(x, weight) >= 2  # one output frame: direct (and no size-1 recompile)
    )


def _output_frames(x: torch.Tensor, weight: torch.Tensor) -> int:
    """Frames out of a 3D convolution (B, C, T, H, W), or of a 2D one over (frames, C, H, W)."""
    return x.shape[2] - weight.shape[2] + 1 if x.dim() == 5 else x.shape[0]


def winograd_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Stride-1 convolution, spatial zero padding 1, no temporal padding (it is done by the caller).

    x: (B, C, T, H, W); weight: (O, C, k_t, 3, 3) -> (B, O, T - k_t + 1, H, W) in channels-last-3d.
    """
    b, c, t, h, w = x.shape
    o, _, k_t = weight.shape[:3]
    m = OUTPUT_TILE
    rows, cols = -(-h // m), -(-w // m)
    # Blocks of tile rows; never a block of one row (the compiler would specialise on it).
    starts = list(range(0, rows, BLOCK_TILE_ROWS))
    if len(starts) > 1 and rows - starts[-1] < 2:
        starts.pop()
    bounds = list(zip(starts, starts[1:] + [rows], strict=True))
    u = filter_transform(weight)
    forward_in, forward_out = _transforms()
    out = torch.empty((b, o, t - k_t + 1, h, w), dtype=x.dtype, memory_format=torch.channels_last_3d)
    with torch.inference_mode():  # every tensor the compiled transforms see is then an inference tensor
        bias = bias.clone() if bias is not None else x.new_zeros(o)
        for n in range(b):
            target = out[n].permute(1, 2, 3, 0)  # (T_out, H, W, O) view
            # (T, H', W', C): zero halo of 1 plus whatever completes the last tile.
            frames = F.pad(x[n].permute(1, 2, 3, 0), (0, 0, 1, 1 + cols * m - w, 1, 1 + rows * m - h))
            for r0, r1 in bounds:
                # contiguous: the compiled transform is specialised to contiguous input (one compilation)
                block_in = frames[:, r0 * m : r1 * m + 2].contiguous()
                v = forward_in(block_in, r1 - r0, cols)  # (36, T, r1 - r0, cols, C)
                del block_in
                products = [_tile_products(v[p], u[p].view(o, k_t, c)) for p in range(v.shape[0])]
                del v
                block = forward_out(products, bias)  # (T_out, 4 (r1 - r0), 4 cols, O)
                y0, y1 = r0 * m, min(h, r1 * m)
                target[:, y0:y1] = block[:, : y1 - y0, :w]
    return out


def _tile_products(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One tile position: (T, rows, cols, C) x U (O, k_t, C) -> (T - k_t + 1, rows, cols, O).

    A (k_t x 1) convolution over (time, tiles) is exactly "sum over taps and channels" for every tile, and
    runs in oneDNN at full speed (MKL's sgemm takes a slower path on some CPUs).
    """
    t, rows, cols, c = v.shape
    flat = v.reshape(1, t, rows * cols, c).permute(0, 3, 1, 2)  # (1, C, T, L), channels-last
    weight = u.permute(0, 2, 1).unsqueeze(-1)  # (O, C, k_t, 1), channels-last
    y = torch.ops.aten.mkldnn_convolution(flat, weight, None, [0, 0], [1, 1], [1, 1], 1)  # (1, O, T', L)
    return y[0].permute(1, 2, 0).reshape(y.shape[2], rows, cols, -1)
