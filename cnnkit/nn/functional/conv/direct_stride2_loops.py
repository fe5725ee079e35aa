"""The compiled stride-2 direct convolution loops (Numba) behind :mod:`.direct_stride2`: forward, weight gradient and
input gradient.

They repeat :mod:`.direct_loops`' 3-wide bodies with two source runs (the even and odd columns' phases): one kernel
for both strides, branching per pass, ran the stride-1 loops slower (paired on ResNet-20's layers; the figures in
benchmarks/RESULTS.md, "Direct convolution at stride 2").
"""
import numba
import numpy as np

from .loops import claim, copy_into, frame_gradient, load_phases_2, store_phases, opts


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
        n = claim(counter)
        if n >= n_img:
            break
        load_phases_2(x[n], buf, plane, pt, pl, hq, wq)
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
                    copy_into(oj[y], fj[y * wq:y * wq + wo])


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
        b = claim(counter)
        if b >= starts.shape[0] - 1:
            break
        gwg = parts[b]
        for n in range(starts[b], starts[b + 1]):
            load_phases_2(x[n], buf, plane, pt, pl, hq, wq)
            for k in range(n_out):
                frame_gradient(g[n, k], fr[k], wq)
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


@numba.njit(fastmath={"contract"}, **opts)
def direct_grad_input_s2(g, wg, gx, pt, pl, hq, wq, counter):  # the adjoint of direct_forward_s2: gx[n, c] ← Σ_k the
    n_img, n_ch = gx.shape[:2]                  # output gradient spread back onto the padded input's four phases,
    n_out, ho, wo = g.shape[1:]                 # then cropped; image n claimed from counter
    kh = wg.shape[2] // 3
    size, plane = ho * wq, (hq + 1) * wq
    buf = np.empty(n_ch * 4 * plane, dtype=gx.dtype)
    fr = np.zeros((4 * wg.shape[0], size + 2), dtype=g.dtype)  # each frame after one zero: fr[k, u] = dY at u − 1
    while True:
        n = claim(counter)
        if n >= n_img:
            break
        for k in range(n_out):
            frame_gradient(g[n, k], fr[k, 1:size + 1], wq)  # (the last group's missing channels and both ends stay 0)
        buf[:] = 0
        for q in range(wg.shape[0]):
            f0, f1, f2, f3 = fr[4 * q], fr[4 * q + 1], fr[4 * q + 2], fr[4 * q + 3]
            for c in range(n_ch):
                for r in range(kh):             # forward: f[v] += w0·e[v] + w1·o[v] + w2·e[v + 1]; here the adjoint,
                    base = (4 * c + 2 * (r % 2)) * plane + (r // 2) * wq  # e[u] += w0·f[u] + w2·f[u − 1], o[u] += w1·f[u]
                    ev, od = buf[base:base + size + 1], buf[base + plane:base + plane + size + 1]
                    wr = wg[q, c, 3 * r:3 * r + 3]
                    a0, a1, a2 = wr[0, 0], wr[1, 0], wr[2, 0]
                    b0, b1, b2 = wr[0, 1], wr[1, 1], wr[2, 1]
                    c0, c1, c2 = wr[0, 2], wr[1, 2], wr[2, 2]
                    d0, d1, d2 = wr[0, 3], wr[1, 3], wr[2, 3]
                    for u in range(size + 1):
                        h0, h1, h2, h3 = f0[u + 1], f1[u + 1], f2[u + 1], f3[u + 1]
                        ev[u] += (a0 * h0 + b0 * h1 + c0 * h2 + d0 * h3) + (a2 * f0[u] + b2 * f1[u] + c2 * f2[u]
                                                                               + d2 * f3[u])
                        od[u] += a1 * h0 + b1 * h1 + c1 * h2 + d1 * h3
        for c in range(n_ch):
            store_phases(buf[4 * c * plane:4 * (c + 1) * plane], gx[n, c], pt, pl, 2, 2, hq, wq)
