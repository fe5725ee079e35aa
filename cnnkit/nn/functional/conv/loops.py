"""Compiled helpers shared by the convolution's compiled algorithms (Numba; imported only with them): claiming work
from an atomic counter, row copies, zero-padded planes (also split into a stride's phases) and gradient frames.

Module-level functions on purpose: a kernel that calls a helper kernel held in a closure gets a new cache key in
every process (the helper's dispatcher pickles differently each time, numba/numba#6264), so Numba's disk cache
missed and every process compiled the direct and depthwise kernels again (about 8 s). Numba checks only the
calling kernel's own file for changes: after editing a helper here, clear the ``__pycache__`` of the kernels that
call it (``python -m pytest`` and a fresh install start from clean caches).
"""
import numba
from llvmlite import ir
from numba.core.extending import intrinsic

opts = dict(nogil=True, cache=True)  # nogil: they run on cnnkit's threads; cache: compiled once per install


@intrinsic
def claim(typingctx, counter):  # counter[0]++ as one atomic step, its old value: the next piece of work to take
    if not (isinstance(counter, numba.types.Array) and counter.dtype == numba.types.int64):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")
    return numba.types.int64(counter), codegen


@numba.njit(**opts)
def copy_into(dst, src):  # dst[:] = src for two 1-D views: row copies written as `a[y*w + v] = b[y, v]` ran slower
    for v in range(dst.shape[0]):
        dst[v] = src[v]


@numba.njit(**opts)
def load_plane(plane, buf, pt, pl, wp):  # the zero-padded plane, flattened: interior only (borders stay 0)
    h, w = plane.shape
    for y in range(h):
        base = (y + pt) * wp + pl
        copy_into(buf[base:base + w], plane[y])


@numba.njit(**opts)
def frame_gradient(g, fr, wp):  # the output gradient on the frame: 0 in the wrap-around columns
    ho, wo = g.shape
    for y in range(ho):
        row = fr[y * wp:(y + 1) * wp]
        copy_into(row[:wo], g[y])
        for v in range(wo, wp):
            row[v] = 0


@numba.njit(**opts)
def load_phases(plane, buf, pt, pl, sh, sw, hq, wq):  # the zero-padded plane split for stride (sh, sw): padded
    if sh == 1 and sw == 1:                             # row Y, column X goes to phase (Y % sh, X % sw), a plane
        load_plane(plane, buf, pt, pl, wq)                   # of (hq + 1) × wq of its own, at row Y // sh, column X // sw
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
            if sw == 2:                                 # a constant step: faster (RESULTS.md)
                dst, src = buf[base:base + count], row[x0:]
                for i in range(count):
                    dst[i] = src[2 * i]
            else:
                for i in range(count):
                    buf[base + i] = row[x0 + i * sw]


@numba.njit(**opts)
def store_phases(buf, plane, pt, pl, sh, sw, hq, wq):  # plane ← its values in load_phases' layout (cropped)
    h, w = plane.shape
    if sh == 1 and sw == 1:
        for y in range(h):
            base = (y + pt) * wq + pl
            copy_into(plane[y], buf[base:base + w])
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
def load_phases_2(x, buf, plane, pt, pl, hq, wq):  # every channel of one image, zero-padded and split into its four
    for c in range(x.shape[0]):                       # stride-2 phases (load_phases), channel after channel
        load_phases(x[c], buf[4 * c * plane:4 * (c + 1) * plane], pt, pl, 2, 2, hq, wq)
