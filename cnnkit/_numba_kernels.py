"""The compiled loops behind :mod:`cnnkit.jit` (Numba): batch norm, max pooling and ReLU. This module is imported only
when a compiled kernel is first needed (importing Numba and LLVM costs about 150 MB); :mod:`cnnkit.jit` documents the
kernels and is the only module that calls them, by name. The convolution's loops live beside their algorithms
(``cnnkit/nn/functional/conv/*_loops.py``).

They are module-level functions on purpose: a kernel that calls a helper kernel held in a closure gets a new cache
key in every process (numba/numba#6264), so Numba's disk cache would miss in every process.
"""
import numba
import numpy as np

opts = dict(nogil=True, cache=True)  # nogil: they run on cnnkit's threads; cache: compiled once per install


@numba.njit(fastmath={"reassoc"}, **opts)
def bn_moments(x3, c0, c1, mean, var):  # per channel: mean and biased variance (two passes, float64)
    n, _, size = x3.shape
    count = n * size
    for c in range(c0, c1):
        s = 0.0
        for i in range(n):
            row = x3[i, c]
            for v in range(size):
                s += row[v]
        mu = s / count
        q = 0.0
        for i in range(n):  # the channel's values are still in cache: the second pass is cheap
            row = x3[i, c]
            for v in range(size):
                d = row[v] - mu
                q += d * d
        mean[c], var[c] = mu, q / count


@numba.njit(fastmath={"reassoc"}, **opts)
def bn_grad_sums(g3, x3, mean, c0, c1, sum_g, sum_gc):  # per channel: Σg and Σg·(x − μ) (float64)
    n, _, size = x3.shape
    for c in range(c0, c1):
        mu, s1, s2 = mean[c], 0.0, 0.0
        for i in range(n):
            gr, xr = g3[i, c], x3[i, c]
            for v in range(size):
                s1 += gr[v]
                s2 += gr[v] * (xr[v] - mu)
        sum_g[c], sum_gc[c] = s1, s2


@numba.njit(**opts)
def bn_apply(src, scale, shift, out, c0, c1, mask):  # out = src·scale + shift, per channel; with a mask (N, C, L)
    n, _, size = src.shape                           # of bytes, out = max(that, 0) (NaN kept) and mask = not out ≤ 0
    masked = mask.size > 0
    zero = np.zeros(1, dtype=out.dtype)[0]
    for i in range(n):                                  # image by image: channels c0:c1 are one contiguous run
        for c in range(c0, c1):
            a, b = scale[c], shift[c]
            sr, orow = src[i, c], out[i, c]
            if masked:
                mr = mask[i, c]
                for v in range(size):
                    y = sr[v] * a + b
                    orow[v] = zero if y < zero else y
                    mr[v] = not y <= zero
            else:
                for v in range(size):
                    orow[v] = sr[v] * a + b


@numba.njit(**opts)
def bn_grad_input(g3, x3, mean, k, const, scale, gx, c0, c1):  # gx = (g − (x − μ)·k − const)·scale
    n, _, size = x3.shape
    for i in range(n):                                  # image by image, as bn_apply
        for c in range(c0, c1):
            mu, kc, cc, sc = mean[c], k[c], const[c], scale[c]
            gr, xr, o = g3[i, c], x3[i, c], gx[i, c]
            for v in range(size):
                o[v] = (gr[v] - (xr[v] - mu) * kc - cc) * sc


@numba.njit(**opts)
def max_pool_grad(x, out, g, gx, kh, kw, sh, sw, dh, dw, pt, pl):  # per window: its first maximum takes g
    h, wd = x.shape[1:]
    ho, wo = out.shape[1:]
    for p in range(x.shape[0]):
        xp, gp = x[p], gx[p]
        for y in range(h):
            for v in range(wd):
                gp[y, v] = 0
        for oy in range(ho):
            for ox in range(wo):
                m = out[p, oy, ox]
                nan = m != m
                done = False
                for i in range(kh):                     # taps in row-major order; those in the padding skipped
                    y = oy * sh - pt + i * dh
                    if y < 0 or y >= h:
                        continue
                    for j in range(kw):
                        v = ox * sw - pl + j * dw
                        if 0 <= v < wd:
                            a = xp[y, v]
                            if a == m or (nan and a != a):
                                gp[y, v] += g[p, oy, ox]
                                done = True
                                break
                    if done:
                        break


@numba.njit(**opts)
def max_pool_grad_2x2(x, out, g, gx):  # 2×2 windows at stride 2 inside the input: the common case, branch-free
    h, wd = x.shape[1:]
    ho, wo = out.shape[1:]
    zero = np.zeros(1, dtype=gx.dtype)[0]
    for p in range(x.shape[0]):
        xp, gp, op, gg = x[p], gx[p], out[p], g[p]
        for y in range(2 * ho, h):                      # an odd last row or column is in no window
            for v in range(wd):
                gp[y, v] = zero
        for y in range(2 * ho):
            for v in range(2 * wo, wd):
                gp[y, v] = zero
        for oy in range(ho):
            r0, r1 = xp[2 * oy], xp[2 * oy + 1]
            q0, q1 = gp[2 * oy], gp[2 * oy + 1]
            for ox in range(wo):
                m = op[oy, ox]
                nan = m != m
                a, b, c = r0[2 * ox], r0[2 * ox + 1], r1[2 * ox]
                ha = np.int64((a == m) | (nan & (a != a)))
                hb = np.int64((b == m) | (nan & (b != b)))
                hc = np.int64((c == m) | (nan & (c != c)))
                t = (1 - ha) * (1 + (1 - hb) * (1 + (1 - hc)))  # the first maximum's tap (row-major), 0..3
                q0[2 * ox] = zero
                q0[2 * ox + 1] = zero
                q1[2 * ox] = zero
                q1[2 * ox + 1] = zero
                gp[2 * oy + (t >> 1), 2 * ox + (t & 1)] = gg[oy, ox]  # no branch: random data mispredicts


@numba.njit(**opts)
def max_pool_2x2(x, out):  # the maximum of each 2×2 window at stride 2; a NaN wins, as in PyTorch
    ho, wo = out.shape[1:]
    for p in range(x.shape[0]):
        xp, op = x[p], out[p]
        for oy in range(ho):
            r0, r1, o = xp[2 * oy], xp[2 * oy + 1], op[oy]
            for ox in range(wo):
                m = r0[2 * ox]
                for v in (r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]):
                    m = v if (v > m) | (v != v) else m
                o[ox] = m


@numba.njit(**opts)
def relu_forward(x, out, mask, keep):  # out = x unless x < 0 (NaN and −0 kept, as PyTorch); mask: not x ≤ 0
    zero = np.zeros(1, dtype=x.dtype)[0]
    if keep:                                            # one pass for both: faster than two (RESULTS.md)
        for i in range(x.shape[0]):
            v = x[i]
            out[i] = zero if v < zero else v
            mask[i] = not v <= zero                     # NaN passes its gradient, as PyTorch
    else:
        for i in range(x.shape[0]):
            v = x[i]
            out[i] = zero if v < zero else v


@numba.njit(**opts)
def relu_inplace(x):  # x = 0 where x < 0, 256 values at a time through a buffer: written as one loop over x,
    zero = np.zeros(1, dtype=x.dtype)[0]  # LLVM makes masked stores (vmaskmovps, microcoded on AMD: RESULTS.md)
    n = x.shape[0]
    whole = n - n % 256
    buf = np.empty(256, dtype=x.dtype)
    for s in range(0, whole, 256):  # a constant trip count: a variable one compiles to masked stores again
        for i in range(256):
            v = x[s + i]
            buf[i] = zero if v < zero else v
        for i in range(256):
            x[s + i] = buf[i]
    for i in range(whole, n):
        v = x[i]
        x[i] = zero if v < zero else v


@numba.njit(**opts)
def add_relu_inplace(a, b):  # a = max(a + b, 0) (NaN and −0 kept, as PyTorch's relu(a + b)): a residual connection
    zero = np.zeros(1, dtype=a.dtype)[0]
    for i in range(a.shape[0]):
        v = a[i] + b[i]
        a[i] = zero if v < zero else v


@numba.njit(**opts)
def relu_grad(g, mask, gx):  # gx = g where the input was positive, else 0 (also where g is NaN, as PyTorch)
    zero = np.zeros(1, dtype=g.dtype)[0]
    m8 = mask.view(np.uint8)                            # the mask as bytes, g loaded whatever it says: read as
    for i in range(g.shape[0]):                         # booleans, LLVM loaded g under the mask (vmaskmovps),
        v = g[i]                                        # slower (RESULTS.md)
        gx[i] = v if m8[i] != 0 else zero
