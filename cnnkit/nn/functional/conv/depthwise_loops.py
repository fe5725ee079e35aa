"""The compiled depthwise loops (Numba) behind :mod:`.depthwise`: forward, input gradient, weight gradient."""
import numba
import numpy as np

from .loops import copy_into, frame_gradient, load_phases, store_phases, opts


@numba.njit(**opts)
def forward(x, w, out, pt, pl, sh, sw, hq, wq, offsets):  # out[n, c] = Σ_t w[c, t]·phases[n, c][offsets[t] + frame]
    n_img, n_ch, ho, wo = out.shape
    size, taps = ho * wq, offsets.shape[0]
    buf = np.zeros(sh * sw * (hq + 1) * wq, dtype=x.dtype)
    fr = np.empty(size, dtype=x.dtype)
    for n in range(n_img):
        for c in range(n_ch):
            load_phases(x[n, c], buf, pt, pl, sh, sw, hq, wq)
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
                copy_into(o[y], fr[y * wq:y * wq + wo])


@numba.njit(**opts)
def grad_input(g, w, gx, pt, pl, sh, sw, hq, wq, offsets):  # the adjoint of forward, cropped to the input
    n_img, n_ch, ho, wo = g.shape
    size = ho * wq
    buf = np.empty(sh * sw * (hq + 1) * wq, dtype=g.dtype)
    fr = np.empty(size, dtype=g.dtype)
    for n in range(n_img):
        for c in range(n_ch):
            frame_gradient(g[n, c], fr, wq)
            buf[:] = 0
            for t in range(offsets.shape[0]):
                wv, dst = w[c, t], buf[offsets[t]:offsets[t] + size]
                for v in range(size):
                    dst[v] += wv * fr[v]
            store_phases(buf, gx[n, c], pt, pl, sh, sw, hq, wq)


@numba.njit(fastmath={"reassoc"}, **opts)  # reassociation lets the dot products vectorise
def grad_weight(g, x, gw, pt, pl, sh, sw, hq, wq, offsets):  # gw[c, t] += Σ frame-gradient · shifted phases
    n_img, n_ch, ho, wo = g.shape
    size, taps = ho * wq, offsets.shape[0]
    buf = np.zeros(sh * sw * (hq + 1) * wq, dtype=x.dtype)
    fr = np.empty(size, dtype=g.dtype)
    zero = np.zeros(1, dtype=gw.dtype)[0]                # (gw[c, t] * 0 would be float64: Numba's promotion)
    for n in range(n_img):
        for c in range(n_ch):
            load_phases(x[n, c], buf, pt, pl, sh, sw, hq, wq)
            frame_gradient(g[n, c], fr, wq)
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
