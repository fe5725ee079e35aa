"""The compiled transforms (Numba) of Winograd's F(2×2, 3×3) behind :mod:`.winograd` (tiles in rows) and
:mod:`.winograd_images` (the images innermost): filters ``G·g·Gᵀ``, input tiles ``Bᵀ·d·B``, output tiles ``Aᵀ·M·A``."""
import numba
import numpy as np

from .loops import copy_into, opts


@numba.njit(**opts)
def wino_filters(w9, u, stride, half):  # entry (i, j) of G·g·Gᵀ for filter f (g = w9[:, f]) at u[(4i + j)·stride + f]
    for f in range(w9.shape[1]):
        a0, a1, a2 = w9[0, f], w9[1, f], w9[2, f]
        b0, b1, b2 = w9[3, f], w9[4, f], w9[5, f]
        c0, c1, c2 = w9[6, f], w9[7, f], w9[8, f]
        # g·Gᵀ, each kernel row (x0, x1, x2) → (x0, (x0 + x1 + x2)/2, (x0 − x1 + x2)/2, x2)
        ap, am = (a0 + a2 + a1) * half, (a0 + a2 - a1) * half
        bp, bm = (b0 + b2 + b1) * half, (b0 + b2 - b1) * half
        cp, cm = (c0 + c2 + c1) * half, (c0 + c2 - c1) * half
        # then G·(g·Gᵀ): each column (r0, r1, r2) the same way
        for j, (r0, r1, r2) in enumerate(((a0, b0, c0), (ap, bp, cp), (am, bm, cm), (a2, b2, c2))):
            u[j * stride + f] = r0
            u[(4 + j) * stride + f] = (r0 + r2 + r1) * half
            u[(8 + j) * stride + f] = (r0 + r2 - r1) * half
            u[(12 + j) * stride + f] = r2


@numba.njit(**opts)
def wino_input(x, v, stride, tiles, first, pt, pl, n0, n1, ty0, ty1, tw):  # V[4i + j, c, tile] = (Bᵀ·d·B)[i, j]
    _, n_ch, h, wd = x.shape
    wp = 2 * tw + 2
    d = np.zeros((4, wp), dtype=x.dtype)               # the tile row's four padded input rows (borders 0)
    t = np.empty((4, wp), dtype=x.dtype)               # Bᵀ·d: the rows combined
    rows = ty1 - ty0
    d0, d1, d2, d3 = d[0], d[1], d[2], d[3]             # rows as 1-D views (see copy_into)
    t0, t1, t2, t3 = t[0], t[1], t[2], t[3]
    for n in range(n0, n1):
        for c in range(n_ch):
            for ty in range(ty0, ty1):
                for i in range(4):
                    y = 2 * ty - pt + i
                    row = d[i, pl:pl + wd]
                    if 0 <= y < h:
                        copy_into(row, x[n, c, y])
                    else:
                        for u in range(wd):
                            row[u] = 0
                for u in range(wp):
                    t0[u] = d0[u] - d2[u]
                    t1[u] = d1[u] + d2[u]
                    t2[u] = d2[u] - d1[u]
                    t3[u] = d1[u] - d3[u]
                base = c * tiles + ((n - first) * rows + ty - ty0) * tw
                for i in range(4):                      # ·B: the columns of each tile combined
                    o0 = 4 * i * stride + base
                    o1, o2, o3 = o0 + stride, o0 + 2 * stride, o0 + 3 * stride
                    ti = t[i]
                    for u in range(tw):
                        a, b, e, f = ti[2 * u], ti[2 * u + 1], ti[2 * u + 2], ti[2 * u + 3]
                        v[o0 + u] = a - e
                        v[o1 + u] = b + e
                        v[o2 + u] = e - b
                        v[o3 + u] = b - f


@numba.njit(**opts)
def wino_output(m, stride, tiles, first, out, bias, n0, n1, ty0, ty1, tw):  # each tile's 2×2 outputs: Aᵀ·M·A + b
    _, n_out, ho, wo = out.shape
    rows = ty1 - ty0
    s = np.empty((2, 4, tw), dtype=m.dtype)            # Aᵀ·M: the rows combined
    for k in range(n_out):                              # channel by channel: M's rows are read in order
        bk = bias[k]
        for n in range(n0, n1):
            for ty in range(ty0, ty1):
                base = k * tiles + ((n - first) * rows + ty - ty0) * tw
                for j in range(4):
                    o0 = j * stride + base
                    o1, o2, o3 = o0 + 4 * stride, o0 + 8 * stride, o0 + 12 * stride
                    for u in range(tw):
                        p, q = m[o1 + u], m[o2 + u]
                        s[0, j, u] = m[o0 + u] + p + q
                        s[1, j, u] = p - q - m[o3 + u]
                for a in range(2):                      # ·A: the columns, into the output rows
                    y = 2 * ty + a
                    if y < ho:
                        o = out[n, k, y]
                        for u in range(tw):
                            p, q = s[a, 1, u], s[a, 2, u]
                            o[2 * u] = s[a, 0, u] + p + q + bk
                            if 2 * u + 1 < wo:
                                o[2 * u + 1] = p - q - s[a, 3, u] + bk


@numba.njit(**opts)
def _comb(dst, a, b, s):  # dst = a + s·b for 1-D views (s = ±1): a loop that vectorises
    for i in range(dst.shape[0]):
        dst[i] = a[i] + s * b[i]


@numba.njit(**opts)
def _comb3(dst, a, b, c, s, k):  # dst = a + s·b + s·c + k for 1-D views (s = ±1)
    for i in range(dst.shape[0]):
        dst[i] = a[i] + s * b[i] + s * c[i] + k


@numba.njit(**opts)
def _tile_cols(dst, t, off_a, off_b, s):  # dst[x, n] = t[2x + off_a, n] + s·t[2x + off_b, n]: column of each tile x
    for x in range(dst.shape[0]):
        _comb(dst[x], t[2 * x + off_a], t[2 * x + off_b], s)


@numba.njit(**opts)
def _tile_outs(dst, off, a, b, c, s, k):  # dst[2x + off, n] = a[x, n] + s·b[x, n] + s·c[x, n] + k: output of tile x
    for x in range(a.shape[0]):
        _comb3(dst[2 * x + off], a[x], b[x], c[x], s, k)


@numba.njit(**opts)
def wino_input_images(x, v, stride, n0, n1, pt, pl, th, tw):  # V[4i + j, c, (ty·tw + tx)·nn + n]
    _, n_ch, h, wd = x.shape
    nn, wp = n1 - n0, 2 * tw + 2
    one = np.ones(1, dtype=x.dtype)[0]
    buf = np.zeros((2 * th + 2, wp, nn), dtype=x.dtype)  # one channel of every image, padded, images last
    t = np.empty((4, wp, nn), dtype=x.dtype)             # Bᵀ·d for one row of tiles
    tiles = th * tw * nn
    ylo, yhi = max(0, -pt), min(h, 2 * th + 2 - pt)
    ulo, uhi = max(0, -pl), min(wd, wp - pl)
    for c in range(n_ch):
        for n in range(nn):
            for y in range(ylo, yhi):
                for u in range(ulo, uhi):
                    buf[y + pt, u + pl, n] = x[n0 + n, c, y, u]
        for ty in range(th):                             # Bᵀ·d: the rows of a row of tiles combined, whole rows
            rows = buf[2 * ty:2 * ty + 4].reshape(4, wp * nn)
            r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
            _comb(t[0].reshape(wp * nn), r0, r2, -one)
            _comb(t[1].reshape(wp * nn), r1, r2, one)
            _comb(t[2].reshape(wp * nn), r2, r1, -one)
            _comb(t[3].reshape(wp * nn), r1, r3, -one)
            q = c * tiles + ty * tw * nn
            for i in range(4):                           # ·B: the columns of each tile, into V's rows 4i … 4i + 3
                ti = t[i]
                _tile_cols(v[q:q + tw * nn].reshape(tw, nn), ti, 0, 2, -one)
                _tile_cols(v[q + stride:q + stride + tw * nn].reshape(tw, nn), ti, 1, 2, one)
                _tile_cols(v[q + 2 * stride:q + 2 * stride + tw * nn].reshape(tw, nn), ti, 2, 1, -one)
                _tile_cols(v[q + 3 * stride:q + 3 * stride + tw * nn].reshape(tw, nn), ti, 1, 3, -one)
                q += 4 * stride


@numba.njit(**opts)
def wino_output_images(m, stride, n0, n1, out, bias, th, tw):  # wino_input_images' layout → Aᵀ·M·A + b
    _, n_out, ho, wo = out.shape
    nn = n1 - n0
    run = tw * nn
    one, zero = np.ones(1, dtype=m.dtype)[0], np.zeros(1, dtype=m.dtype)[0]
    y = np.empty((2 * th, 2 * tw, nn), dtype=m.dtype)   # one output channel of every image, images last
    s = np.empty((2, 4, tw, nn), dtype=m.dtype)         # Aᵀ·M for one row of tiles
    tiles = th * tw * nn
    for k in range(n_out):
        bk = bias[k]
        for ty in range(th):
            q = k * tiles + ty * run
            for j in range(4):                           # Aᵀ·M: rows 0 + 1 + 2 and 1 − 2 − 3, column j
                r = q + j * stride
                m0, m1 = m[r:r + run], m[r + 4 * stride:r + 4 * stride + run]
                m2, m3 = m[r + 8 * stride:r + 8 * stride + run], m[r + 12 * stride:r + 12 * stride + run]
                _comb3(s[0, j].reshape(run), m0, m1, m2, one, zero)
                _comb3(s[1, j].reshape(run), m1, m2, m3, -one, zero)
            for a in range(2):                           # ·A, plus the bias: the output rows 2ty, 2ty + 1
                sa, ya = s[a], y[2 * ty + a]
                _tile_outs(ya, 0, sa[0], sa[1], sa[2], one, bk)
                _tile_outs(ya, 1, sa[1], sa[2], sa[3], -one, bk)
        for n in range(nn):                              # images first again, the outputs past Ho/Wo dropped
            for r in range(ho):
                for u in range(wo):
                    out[n0 + n, k, r, u] = y[r, u, n]
