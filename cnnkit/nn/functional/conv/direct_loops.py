"""The compiled stride-1 direct convolution loops (Numba) behind :mod:`.direct`: forward and weight gradient (the
input gradient is the forward loop over the padded output gradient)."""
import numba
import numpy as np

from .loops import claim, copy_into, frame_gradient, load_plane, opts


@numba.njit(**opts)
def _load_stack(x, n0, nb, buf, plane, hp, pt, pl, wp):  # images n0:n0+nb, each channel's padded planes one under the
    for c in range(x.shape[1]):                         # other (hp rows each) in the channel's plane of the buffer
        for b in range(nb):
            base = c * plane + b * hp * wp
            load_plane(x[n0 + b, c], buf[base:base + hp * wp], pt, pl, wp)


@numba.njit(fastmath={"contract"}, **opts)
def direct_forward(x, wg, bias, out, pt, pl, hp, wp, kw, stack, strip, counter):  # out[n, G·q + j] = b +
    n_img, n_ch = x.shape[:2]                           # Σ_c,t wg[q, c, t, j]·shifted plane; ``stack`` images at a
    n_out, ho, wo = out.shape[1:]                       # time, claimed from counter, their padded planes one under the
    group = wg.shape[3]                                 # other: one frame, computed ``strip`` rows at a time (the four
    kh = wg.shape[2] // kw                              # filters' rows stay in cache); filters per pass: 4
    plane = (stack * hp + 1) * wp
    buf = np.zeros(n_ch * plane, dtype=x.dtype)
    fr = np.empty((4, min(2 * strip, stack * hp) * wp), dtype=x.dtype)
    f0, f1, f2, f3 = fr[0], fr[1], fr[2], fr[3]
    while True:
        n0 = claim(counter) * stack
        if n0 >= n_img:
            break
        nb = min(stack, n_img - n0)
        rows = (nb - 1) * hp + ho                       # the frame: up to the last image's last output row
        strips = 1 if rows <= 2 * strip else (rows + strip - 1) // strip
        step = (rows + strips - 1) // strips            # rows per strip, balanced
        _load_stack(x, n0, nb, buf, plane, hp, pt, pl, wp)
        for q in range(wg.shape[0]):                    # a group of output channels per pass over the input
            for y0 in range(0, rows, step):             # one strip of frame rows after the other
                size = (min(rows, y0 + step) - y0) * wp
                for j in range(group):
                    fj, bj = fr[j], bias[group * q + j]
                    for v in range(size):
                        fj[v] = bj
                for c in range(n_ch):
                    for r in range(kh):                 # one kernel row: its kw taps in one pass
                        first = c * plane + (r + y0) * wp
                        src = buf[first:first + size + kw - 1]
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
                        else:                           # kw == 5 (20 weights: some spill, still faster than pairs)
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
                for j in range(min(group, n_out - group * q)):  # the strip's valid rows and columns
                    fj = fr[j]
                    for row in range(y0, min(rows, y0 + step)):
                        b, y = row // hp, row % hp
                        if y < ho:
                            copy_into(out[n0 + b, group * q + j, y], fj[(row - y0) * wp:(row - y0) * wp + wo])


@numba.njit(fastmath={"contract", "reassoc"}, **opts)  # reassociation lets the dot products vectorise
def direct_grad_weight(g, x, parts, starts, pt, pl, hp, wp, kw, stack, counter):  # parts[b, q, c, t, j] += Σ over
    n_ch = x.shape[1]                                   # the images of block b (starts[b]:starts[b + 1], claimed from
    n_blocks = starts.shape[0] - 1                      # counter) of frame-gradient · shifted plane, ``stack`` images
    group = parts.shape[4]                              # at a time as in direct_forward; 4 filters per pass (kw 3),
    plane = (stack * hp + 1) * wp                       # 2 (kw 5)
    buf = np.zeros(n_ch * plane, dtype=x.dtype)
    fr = np.zeros((group * parts.shape[1], stack * hp * wp), dtype=g.dtype)  # the last group's missing channels
    zero = np.zeros(1, dtype=g.dtype)[0]                                       # and the rows between images stay 0
    while True:
        b = claim(counter)
        if b >= n_blocks:
            break
        gwg = parts[b]
        for n0 in range(starts[b], starts[b + 1], stack):
            _grad_weight_stack(g, x, n0, min(stack, starts[b + 1] - n0), gwg, buf, fr, plane, hp, pt, pl, wp, kw,
                               zero)


@numba.njit(fastmath={"contract", "reassoc"}, **opts)
def _grad_weight_stack(g, x, n0, nb, gwg, buf, fr, plane, hp, pt, pl, wp, kw, zero):  # images n0:n0 + nb's term of
    n_ch = x.shape[1]                                                                  # direct_grad_weight
    n_out, ho, wo = g.shape[1:]
    group = gwg.shape[3]
    kh = gwg.shape[2] // kw
    size = ((nb - 1) * hp + ho) * wp
    _load_stack(x, n0, nb, buf, plane, hp, pt, pl, wp)
    for k in range(n_out):
        for b in range(nb):
            frame_gradient(g[n0 + b, k], fr[k, b * hp * wp:], wp)
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
