"""The compiled loops behind :mod:`cnnkit.jit` (Numba). This module is imported only when a compiled kernel is
first needed (importing Numba and LLVM costs about 150 MB); :mod:`cnnkit.jit` documents the kernels and is the only
module that calls them.

They are module-level functions on purpose: a kernel that calls a helper kernel held in a closure gets a new cache
key in every process (the helper's dispatcher pickles differently each time, numba/numba#6264), so Numba's disk
cache missed and every process compiled the direct and depthwise kernels again (about 8 s).
"""
import numba
import numpy as np
from llvmlite import ir
from numba.core.extending import intrinsic

opts = dict(nogil=True, cache=True)  # nogil: they run on cnnkit's threads; cache: compiled once per install


@intrinsic
def _claim(typingctx, counter):  # counter[0]++ as one atomic step, its old value: the next piece of work to take
    if not (isinstance(counter, numba.types.Array) and counter.dtype == numba.types.int64):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")
    return numba.types.int64(counter), codegen


@numba.njit(**opts)
def _copy(dst, src):  # dst[:] = src for two 1-D views: row copies written as `a[y*w + v] = b[y, v]` ran 2-4x slower
    for v in range(dst.shape[0]):
        dst[v] = src[v]


@numba.njit(**opts)
def _load(plane, buf, pt, pl, wp):  # the zero-padded plane, flattened: interior only (borders stay 0)
    h, w = plane.shape
    for y in range(h):
        base = (y + pt) * wp + pl
        _copy(buf[base:base + w], plane[y])


@numba.njit(**opts)
def _frame(g, fr, wp):  # the output gradient on the frame: 0 in the wrap-around columns
    ho, wo = g.shape
    for y in range(ho):
        row = fr[y * wp:(y + 1) * wp]
        _copy(row[:wo], g[y])
        for v in range(wo, wp):
            row[v] = 0


@numba.njit(**opts)
def _load_phases(plane, buf, pt, pl, sh, sw, hq, wq):  # the zero-padded plane split for stride (sh, sw): padded
    if sh == 1 and sw == 1:                             # row Y, column X goes to phase (Y % sh, X % sw), a plane
        _load(plane, buf, pt, pl, wq)                   # of (hq + 1) × wq of its own, at row Y // sh, column X // sw
        return
    h, w = plane.shape
    size = (hq + 1) * wq
    for y in range(h):
        yy = y + pt
        row = plane[y]
        for b in range(sw):
            x0 = (b - pl) % sw                          # the plane's first column in phase b
            base = ((yy % sh) * sw + b) * size + (yy // sh) * wq + (x0 + pl) // sw
            count = (w - x0 + sw - 1) // sw
            if sw == 2:                                 # a constant step: 1.8x faster
                dst, src = buf[base:base + count], row[x0:]
                for i in range(count):
                    dst[i] = src[2 * i]
            else:
                for i in range(count):
                    buf[base + i] = row[x0 + i * sw]


@numba.njit(**opts)
def _store_phases(buf, plane, pt, pl, sh, sw, hq, wq):  # plane ← its values in _load_phases' layout (cropped)
    h, w = plane.shape
    if sh == 1 and sw == 1:
        for y in range(h):
            base = (y + pt) * wq + pl
            _copy(plane[y], buf[base:base + w])
        return
    size = (hq + 1) * wq
    for y in range(h):
        yy = y + pt
        row = plane[y]
        for b in range(sw):
            x0 = (b - pl) % sw
            base = ((yy % sh) * sw + b) * size + (yy // sh) * wq + (x0 + pl) // sw
            for i in range((w - x0 + sw - 1) // sw):
                row[x0 + i * sw] = buf[base + i]


@numba.njit(**opts)
def forward(x, w, out, pt, pl, sh, sw, hq, wq, offsets):  # out[n, c] = Σ_t w[c, t]·phases[n, c][offsets[t] + frame]
    n_img, n_ch, ho, wo = out.shape
    size, taps = ho * wq, offsets.shape[0]
    buf = np.zeros(sh * sw * (hq + 1) * wq, dtype=x.dtype)
    fr = np.empty(size, dtype=x.dtype)
    for n in range(n_img):
        for c in range(n_ch):
            _load_phases(x[n, c], buf, pt, pl, sh, sw, hq, wq)
            if taps == 9:                               # a 3×3 kernel: all nine taps in one pass (9 weights in
                o0, o1, o2, o3, o4 = offsets[0], offsets[1], offsets[2], offsets[3], offsets[4]  # registers)
                o5, o6, o7, o8 = offsets[5], offsets[6], offsets[7], offsets[8]
                w0, w1, w2, w3, w4 = w[c, 0], w[c, 1], w[c, 2], w[c, 3], w[c, 4]
                w5, w6, w7, w8 = w[c, 5], w[c, 6], w[c, 7], w[c, 8]
                s0, s1, s2 = buf[o0:o0 + size], buf[o1:o1 + size], buf[o2:o2 + size]
                s3, s4, s5 = buf[o3:o3 + size], buf[o4:o4 + size], buf[o5:o5 + size]
                s6, s7, s8 = buf[o6:o6 + size], buf[o7:o7 + size], buf[o8:o8 + size]
                for v in range(size):
                    fr[v] = ((w0 * s0[v] + w1 * s1[v] + w2 * s2[v]) + (w3 * s3[v] + w4 * s4[v] + w5 * s5[v])
                             + (w6 * s6[v] + w7 * s7[v] + w8 * s8[v]))
                taps_left = 0
            else:
                for v in range(size):
                    fr[v] = 0
                taps_left = taps
            for t in range(0, taps_left - taps_left % 3, 3):  # three taps per pass over the frame (a kernel row)
                w0, w1, w2 = w[c, t], w[c, t + 1], w[c, t + 2]
                s0 = buf[offsets[t]:offsets[t] + size]
                s1 = buf[offsets[t + 1]:offsets[t + 1] + size]
                s2 = buf[offsets[t + 2]:offsets[t + 2] + size]
                for v in range(size):
                    fr[v] += w0 * s0[v] + w1 * s1[v] + w2 * s2[v]
            for t in range(taps_left - taps_left % 3, taps_left):
                wv, src = w[c, t], buf[offsets[t]:offsets[t] + size]
                for v in range(size):
                    fr[v] += wv * src[v]
            o = out[n, c]
            for y in range(ho):
                _copy(o[y], fr[y * wq:y * wq + wo])


@numba.njit(**opts)
def grad_input(g, w, gx, pt, pl, sh, sw, hq, wq, offsets):  # the adjoint of forward, cropped to the input
    n_img, n_ch, ho, wo = g.shape
    size = ho * wq
    buf = np.empty(sh * sw * (hq + 1) * wq, dtype=g.dtype)
    fr = np.empty(size, dtype=g.dtype)
    for n in range(n_img):
        for c in range(n_ch):
            _frame(g[n, c], fr, wq)
            buf[:] = 0
            for t in range(offsets.shape[0]):
                wv, dst = w[c, t], buf[offsets[t]:offsets[t] + size]
                for v in range(size):
                    dst[v] += wv * fr[v]
            _store_phases(buf, gx[n, c], pt, pl, sh, sw, hq, wq)


@numba.njit(fastmath={"reassoc"}, **opts)  # reassociation lets the dot products vectorise
def grad_weight(g, x, gw, pt, pl, sh, sw, hq, wq, offsets):  # gw[c, t] += Σ frame-gradient · shifted phases
    n_img, n_ch, ho, wo = g.shape
    size, taps = ho * wq, offsets.shape[0]
    buf = np.zeros(sh * sw * (hq + 1) * wq, dtype=x.dtype)
    fr = np.empty(size, dtype=g.dtype)
    zero = np.zeros(1, dtype=gw.dtype)[0]                # (gw[c, t] * 0 would be float64: Numba's promotion)
    for n in range(n_img):
        for c in range(n_ch):
            _load_phases(x[n, c], buf, pt, pl, sh, sw, hq, wq)
            _frame(g[n, c], fr, wq)
            for t in range(0, taps - taps % 3, 3):      # three taps per pass, as forward
                s0 = buf[offsets[t]:offsets[t] + size]
                s1 = buf[offsets[t + 1]:offsets[t + 1] + size]
                s2 = buf[offsets[t + 2]:offsets[t + 2] + size]
                a0 = a1 = a2 = zero
                for v in range(size):
                    f = fr[v]
                    a0 += f * s0[v]
                    a1 += f * s1[v]
                    a2 += f * s2[v]
                gw[c, t] += a0
                gw[c, t + 1] += a1
                gw[c, t + 2] += a2
            for t in range(taps - taps % 3, taps):
                src = buf[offsets[t]:offsets[t] + size]
                acc = zero
                for v in range(size):
                    acc += fr[v] * src[v]
                gw[c, t] += acc


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
    d0, d1, d2, d3 = d[0], d[1], d[2], d[3]             # rows as 1-D views (see _copy)
    t0, t1, t2, t3 = t[0], t[1], t[2], t[3]
    for n in range(n0, n1):
        for c in range(n_ch):
            for ty in range(ty0, ty1):
                for i in range(4):
                    y = 2 * ty - pt + i
                    row = d[i, pl:pl + wd]
                    if 0 <= y < h:
                        _copy(row, x[n, c, y])
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


@numba.njit(**opts)
def _load_planes(x, buf, plane, pt, pl, wp):  # every channel of one image, zero-padded, plane after plane
    for c in range(x.shape[0]):
        _load(x[c], buf[c * plane:(c + 1) * plane], pt, pl, wp)


@numba.njit(fastmath={"contract"}, **opts)
def direct_forward(x, wg, bias, out, pt, pl, hp, wp, kw, counter):  # out[n, G·q + j] = b + Σ_c,t wg[q, c, t, j]·
    n_img, n_ch = x.shape[:2]                                           # shifted plane, image n claimed from counter
    n_out, ho, wo = out.shape[1:]
    group = wg.shape[3]                                 # filters per pass: 4
    kh = wg.shape[2] // kw
    size, plane = ho * wp, (hp + 1) * wp
    buf = np.zeros(n_ch * plane, dtype=x.dtype)
    fr = np.empty((4, size), dtype=x.dtype)
    f0, f1, f2, f3 = fr[0], fr[1], fr[2], fr[3]
    while True:
        n = _claim(counter)
        if n >= n_img:
            break
        _load_planes(x[n], buf, plane, pt, pl, wp)
        for q in range(wg.shape[0]):                    # a group of output channels per pass over the input
            for j in range(group):
                fj, bj = fr[j], bias[group * q + j]
                for v in range(size):
                    fj[v] = bj
            for c in range(n_ch):
                for r in range(kh):                     # one kernel row: its kw taps in one pass
                    src = buf[c * plane + r * wp:c * plane + r * wp + size + kw - 1]
                    wr = wg[q, c, r * kw:(r + 1) * kw]
                    if kw == 3:
                        a0, a1, a2 = wr[0, 0], wr[1, 0], wr[2, 0]
                        b0, b1, b2 = wr[0, 1], wr[1, 1], wr[2, 1]
                        c0, c1, c2 = wr[0, 2], wr[1, 2], wr[2, 2]
                        d0, d1, d2 = wr[0, 3], wr[1, 3], wr[2, 3]
                        for v in range(size):
                            s0, s1, s2 = src[v], src[v + 1], src[v + 2]
                            f0[v] += a0 * s0 + a1 * s1 + a2 * s2
                            f1[v] += b0 * s0 + b1 * s1 + b2 * s2
                            f2[v] += c0 * s0 + c1 * s1 + c2 * s2
                            f3[v] += d0 * s0 + d1 * s1 + d2 * s2
                    else:                               # kw == 5 (20 weights: some spill, still 0.87-0.89x pairs)
                        a0, a1, a2, a3, a4 = wr[0, 0], wr[1, 0], wr[2, 0], wr[3, 0], wr[4, 0]
                        b0, b1, b2, b3, b4 = wr[0, 1], wr[1, 1], wr[2, 1], wr[3, 1], wr[4, 1]
                        c0, c1, c2, c3, c4 = wr[0, 2], wr[1, 2], wr[2, 2], wr[3, 2], wr[4, 2]
                        d0, d1, d2, d3, d4 = wr[0, 3], wr[1, 3], wr[2, 3], wr[3, 3], wr[4, 3]
                        for v in range(size):
                            s0, s1, s2, s3, s4 = src[v], src[v + 1], src[v + 2], src[v + 3], src[v + 4]
                            f0[v] += a0 * s0 + a1 * s1 + a2 * s2 + a3 * s3 + a4 * s4
                            f1[v] += b0 * s0 + b1 * s1 + b2 * s2 + b3 * s3 + b4 * s4
                            f2[v] += c0 * s0 + c1 * s1 + c2 * s2 + c3 * s3 + c4 * s4
                            f3[v] += d0 * s0 + d1 * s1 + d2 * s2 + d3 * s3 + d4 * s4
            for j in range(min(group, n_out - group * q)):  # the valid columns of the frame
                o, fj = out[n, group * q + j], fr[j]
                for y in range(ho):
                    _copy(o[y], fj[y * wp:y * wp + wo])


@numba.njit(fastmath={"contract", "reassoc"}, **opts)  # reassociation lets the dot products vectorise
def direct_grad_weight(g, x, parts, starts, pt, pl, hp, wp, kw, counter):  # parts[b, q, c, t, j] += Σ over the
    n_ch = x.shape[1]                                   # images of block b (starts[b]:starts[b + 1], claimed from
    n_blocks = starts.shape[0] - 1                      # counter) of frame-gradient · shifted plane
    group = parts.shape[4]                              # as direct_forward: 4 filters per pass (kw 3), 2 (kw 5)
    size, plane = g.shape[2] * wp, (hp + 1) * wp
    buf = np.zeros(n_ch * plane, dtype=x.dtype)
    fr = np.zeros((group * parts.shape[1], size), dtype=g.dtype)  # the last group's missing channels stay 0
    zero = np.zeros(1, dtype=g.dtype)[0]
    while True:
        b = _claim(counter)
        if b >= n_blocks:
            break
        gwg = parts[b]
        for n in range(starts[b], starts[b + 1]):
            _grad_weight_image(g[n], x[n], gwg, buf, fr, plane, pt, pl, wp, kw, zero)


@numba.njit(fastmath={"contract", "reassoc"}, **opts)
def _grad_weight_image(g, x, gwg, buf, fr, plane, pt, pl, wp, kw, zero):  # one image's term of direct_grad_weight
    n_ch = x.shape[0]
    n_out, ho, wo = g.shape
    group = gwg.shape[3]
    kh = gwg.shape[2] // kw
    size = ho * wp
    _load_planes(x, buf, plane, pt, pl, wp)
    for k in range(n_out):
        _frame(g[k], fr[k], wp)
    for q in range(gwg.shape[0]):
        g0, g1 = fr[group * q], fr[group * q + 1]
        for c in range(n_ch):
            for r in range(kh):
                src = buf[c * plane + r * wp:c * plane + r * wp + size + kw - 1]
                acc = gwg[q, c, r * kw:(r + 1) * kw]
                if kw == 3:
                    g2, g3 = fr[group * q + 2], fr[group * q + 3]
                    a0 = a1 = a2 = b0 = b1 = b2 = c0 = c1 = c2 = d0 = d1 = d2 = zero
                    for v in range(size):
                        s0, s1, s2 = src[v], src[v + 1], src[v + 2]
                        h0, h1, h2, h3 = g0[v], g1[v], g2[v], g3[v]
                        a0 += h0 * s0
                        a1 += h0 * s1
                        a2 += h0 * s2
                        b0 += h1 * s0
                        b1 += h1 * s1
                        b2 += h1 * s2
                        c0 += h2 * s0
                        c1 += h2 * s1
                        c2 += h2 * s2
                        d0 += h3 * s0
                        d1 += h3 * s1
                        d2 += h3 * s2
                    acc[0, 0] += a0
                    acc[1, 0] += a1
                    acc[2, 0] += a2
                    acc[0, 1] += b0
                    acc[1, 1] += b1
                    acc[2, 1] += b2
                    acc[0, 2] += c0
                    acc[1, 2] += c1
                    acc[2, 2] += c2
                    acc[0, 3] += d0
                    acc[1, 3] += d1
                    acc[2, 3] += d2
                else:                               # kw == 5
                    a0 = a1 = a2 = a3 = a4 = c0 = c1 = c2 = c3 = c4 = zero
                    for v in range(size):
                        s0, s1, s2, s3, s4 = src[v], src[v + 1], src[v + 2], src[v + 3], src[v + 4]
                        h0, h1 = g0[v], g1[v]
                        a0 += h0 * s0
                        a1 += h0 * s1
                        a2 += h0 * s2
                        a3 += h0 * s3
                        a4 += h0 * s4
                        c0 += h1 * s0
                        c1 += h1 * s1
                        c2 += h1 * s2
                        c3 += h1 * s3
                        c4 += h1 * s4
                    acc[0, 0] += a0
                    acc[1, 0] += a1
                    acc[2, 0] += a2
                    acc[3, 0] += a3
                    acc[4, 0] += a4
                    acc[0, 1] += c0
                    acc[1, 1] += c1
                    acc[2, 1] += c2
                    acc[3, 1] += c3
                    acc[4, 1] += c4


@numba.njit(**opts)
def _load_phases_2(x, buf, plane, pt, pl, hq, wq):  # every channel of one image, zero-padded and split into its four
    for c in range(x.shape[0]):                       # stride-2 phases (_load_phases), channel after channel
        _load_phases(x[c], buf[4 * c * plane:4 * (c + 1) * plane], pt, pl, 2, 2, hq, wq)


# The stride-2 loops below repeat direct_forward's and _grad_weight_image's 3-wide bodies with two source runs:
# one kernel for both strides, branching per pass, ran the stride-1 loops 4-10 % slower (paired, ResNet-20's layers).
@numba.njit(fastmath={"contract"}, **opts)
def direct_forward_s2(x, wg, bias, out, pt, pl, hq, wq, counter):  # direct_forward for 3-wide kernels at stride 2:
    n_img, n_ch = x.shape[:2]                   # kernel row r reads phase row r % 2, r // 2 rows down; taps 0 and 2
    n_out, ho, wo = out.shape[1:]               # the even columns' phase at v and v + 1, tap 1 the odd one's at v
    group, kh = wg.shape[3], wg.shape[2] // 3
    size, plane = ho * wq, (hq + 1) * wq
    buf = np.zeros(n_ch * 4 * plane, dtype=x.dtype)
    fr = np.empty((4, size), dtype=x.dtype)
    f0, f1, f2, f3 = fr[0], fr[1], fr[2], fr[3]
    while True:
        n = _claim(counter)
        if n >= n_img:
            break
        _load_phases_2(x[n], buf, plane, pt, pl, hq, wq)
        for q in range(wg.shape[0]):
            for j in range(group):
                fj, bj = fr[j], bias[group * q + j]
                for v in range(size):
                    fj[v] = bj
            for c in range(n_ch):
                for r in range(kh):
                    base = (4 * c + 2 * (r % 2)) * plane + (r // 2) * wq
                    ev, od = buf[base:], buf[base + plane:]
                    wr = wg[q, c, 3 * r:3 * r + 3]
                    a0, a1, a2 = wr[0, 0], wr[1, 0], wr[2, 0]
                    b0, b1, b2 = wr[0, 1], wr[1, 1], wr[2, 1]
                    c0, c1, c2 = wr[0, 2], wr[1, 2], wr[2, 2]
                    d0, d1, d2 = wr[0, 3], wr[1, 3], wr[2, 3]
                    for v in range(size):
                        s0, s1, s2 = ev[v], od[v], ev[v + 1]
                        f0[v] += a0 * s0 + a1 * s1 + a2 * s2
                        f1[v] += b0 * s0 + b1 * s1 + b2 * s2
                        f2[v] += c0 * s0 + c1 * s1 + c2 * s2
                        f3[v] += d0 * s0 + d1 * s1 + d2 * s2
            for j in range(min(group, n_out - group * q)):
                oj, fj = out[n, group * q + j], fr[j]
                for y in range(ho):
                    _copy(oj[y], fj[y * wq:y * wq + wo])


@numba.njit(fastmath={"contract", "reassoc"}, **opts)
def direct_grad_weight_s2(g, x, parts, starts, pt, pl, hq, wq, counter):  # direct_grad_weight for direct_forward_s2
    n_ch = x.shape[1]
    n_out, ho = g.shape[1:3]
    kh = parts.shape[3] // 3                            # four filters per pass
    size, plane = ho * wq, (hq + 1) * wq
    buf = np.zeros(n_ch * 4 * plane, dtype=x.dtype)
    fr = np.zeros((4 * parts.shape[1], size), dtype=g.dtype)
    zero = np.zeros(1, dtype=g.dtype)[0]
    while True:
        b = _claim(counter)
        if b >= starts.shape[0] - 1:
            break
        gwg = parts[b]
        for n in range(starts[b], starts[b + 1]):
            _load_phases_2(x[n], buf, plane, pt, pl, hq, wq)
            for k in range(n_out):
                _frame(g[n, k], fr[k], wq)
            for q in range(gwg.shape[0]):
                g0, g1, g2, g3 = fr[4 * q], fr[4 * q + 1], fr[4 * q + 2], fr[4 * q + 3]
                for c in range(n_ch):
                    for r in range(kh):
                        base = (4 * c + 2 * (r % 2)) * plane + (r // 2) * wq
                        ev, od = buf[base:], buf[base + plane:]
                        acc = gwg[q, c, 3 * r:3 * r + 3]
                        a0 = a1 = a2 = b0 = b1 = b2 = c0 = c1 = c2 = d0 = d1 = d2 = zero
                        for v in range(size):
                            s0, s1, s2 = ev[v], od[v], ev[v + 1]
                            h0, h1, h2, h3 = g0[v], g1[v], g2[v], g3[v]
                            a0 += h0 * s0
                            a1 += h0 * s1
                            a2 += h0 * s2
                            b0 += h1 * s0
                            b1 += h1 * s1
                            b2 += h1 * s2
                            c0 += h2 * s0
                            c1 += h2 * s1
                            c2 += h2 * s2
                            d0 += h3 * s0
                            d1 += h3 * s1
                            d2 += h3 * s2
                        acc[0, 0] += a0
                        acc[1, 0] += a1
                        acc[2, 0] += a2
                        acc[0, 1] += b0
                        acc[1, 1] += b1
                        acc[2, 1] += b2
                        acc[0, 2] += c0
                        acc[1, 2] += c1
                        acc[2, 2] += c2
                        acc[0, 3] += d0
                        acc[1, 3] += d1
                        acc[2, 3] += d2


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
    if keep:                                            # one pass for both: 1.3-1.6x faster than two
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
    zero = np.zeros(1, dtype=x.dtype)[0]  # LLVM makes masked stores (vmaskmovps, microcoded on AMD: 2-4x slower)
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
        v = g[i]                                        # 1.3-1.8x slower
        gx[i] = v if m8[i] != 0 else zero


#: The kernels in the order :mod:`cnnkit.jit` indexes them.
KERNELS = (forward, grad_input, grad_weight, bn_moments, bn_grad_sums, bn_apply, bn_grad_input,
           wino_filters, wino_input, wino_output, direct_forward, direct_grad_weight, max_pool_grad,
           relu_forward, relu_grad, max_pool_grad_2x2, max_pool_2x2, wino_input_images, wino_output_images,
           relu_inplace, add_relu_inplace, direct_forward_s2, direct_grad_weight_s2)
