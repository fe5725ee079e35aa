"""The explorer's web application: a short list of routes, each a small function that validates its
input and returns JSON; the page's own files from one folder; limits and errors in one place.

Routes (the README's "Explorer" section documents each one's input, output and errors):

========================================  ============================================================
``GET  /``                                the page
``GET  /static/{file}``                   its CSS and JavaScript (only the files of ``static/``)
``GET  /api/model``                       the model: name, classes, input size, layers with the report
``GET  /api/layers/{layer}/explain``      ``cnnkit explain``'s derivation of one layer
``GET  /api/layers/{layer}/filters``      a conv layer's filters (``start``, ``count``)
``GET  /api/samples``                     images of the run's test set the page can pick
``GET  /api/samples/{index}.png``         one of them as a PNG
``POST /api/predict``                     an image (raw ``image/*`` body, multipart field ``image``, or
                                          JSON ``{"sample": i}``) → class probabilities and an input id
``GET  /api/inputs/{id}/maps/{layer}``    activation maps of one layer (``start``, ``count``)
``GET  /api/inputs/{id}/value/{layer}``   where one value comes from (``c``, ``y``, ``x``)
``GET  /api/inputs/{id}/occlusion``       occlusion sensitivity (``target``, ``size``, ``stride``)
``GET  /api/inputs/{id}/saliency``        saliency (``target``)
``GET  /api/layers/{layer}/top-patches``  a channel's strongest input patches over the data set
========================================  ============================================================

Arrays travel as base64 of little-endian float32 (``{"shape": [...], "data": "..."}``), each map when
the page shows it. Nothing is unpickled; uploads are decoded by Pillow and nothing else.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import derive as _derive
from .backend import Explorer, InputError, NotFound

__all__ = ["create_app", "MAX_UPLOAD", "STATIC"]

#: The largest request body the explorer reads (an upload): larger gets 413 before it is read.
MAX_UPLOAD = 10 * 1024 * 1024
#: The page's own files: the only files the server ever sends.
STATIC = Path(__file__).parent / "static"
MEDIA = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
#: Most channels one maps/filters request returns.
MAX_COUNT = 64
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                      "frame-ancestors 'none'"}


class TooLarge(Exception):
    """The request body passed :data:`MAX_UPLOAD`: answered with 413."""


# ---------------------------------------------------------------------------- limits and errors
class BodyLimit:
    """ASGI middleware: refuse a body over ``limit`` bytes — by its Content-Length before reading it,
    or, without one, as soon as the bytes received pass the limit (the rest is never read)."""

    def __init__(self, app, limit: int = MAX_UPLOAD):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                too_big = False
            if too_big:
                return await _too_large(int(length), self.limit)(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLarge(seen)
            return message

        await self.app(scope, limited, send)


def _too_large(size: int, limit: int) -> JSONResponse:
    return _error(413, f"upload of {size:,} bytes is over the limit of {limit:,} bytes (10 MB)")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=HEADERS)


async def _on_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, TooLarge):
        return _too_large(exc.args[0], MAX_UPLOAD)
    if isinstance(exc, NotFound):
        return _error(404, str(exc))
    if isinstance(exc, (InputError, ValueError, TypeError)):
        return _error(400, str(exc))
    if isinstance(exc, HTTPException):
        return _error(exc.status_code, {404: f"no such page: {request.url.path}",
                                        405: f"{request.method} is not allowed on {request.url.path}"}
                      .get(exc.status_code, str(exc.detail)))
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------- helpers
def _int(request: Request, name: str, default=None, lo=None, hi=None):
    """Query parameter ``name`` as an int within [lo, hi] (``default`` when absent), or a 400 naming it
    and the value received."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise InputError(f"query parameter {name}={raw!r} is not an integer") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise InputError(f"query parameter {name}={v} is out of range {lo}..{'' if hi is None else hi}")
    return v


def _array(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype="<f4")
    finite = a[np.isfinite(a)]
    return {"shape": list(a.shape), "dtype": "float32",
            "min": float(finite.min()) if finite.size else 0.0, "max": float(finite.max()) if finite.size else 0.0,
            "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _json(obj) -> JSONResponse:
    return JSONResponse(obj, headers=HEADERS)


def _channels(request: Request, total: int):
    start = _int(request, "start", 0, 0, max(total - 1, 0))
    count = _int(request, "count", min(16, total), 1, MAX_COUNT)
    return start, min(count, total - start)


def _target(request: Request, ex: Explorer, rec) -> int:
    return _int(request, "target", int(np.argmax(rec.probabilities)), 0, len(ex.classes) - 1)


# ---------------------------------------------------------------------------- routes
def create_app(explorer: Explorer, allowed_hosts=None) -> Starlette:
    """The explorer's ASGI app for ``explorer`` (``allowed_hosts``: the Host headers it answers)."""
    ex = explorer
    assets = {p.relative_to(STATIC).as_posix(): (p.read_bytes(), MEDIA.get(p.suffix, "application/octet-stream"))
              for p in sorted(STATIC.rglob("*")) if p.is_file() and p.suffix in MEDIA}

    def page(request):
        body, media = assets["index.html"]
        return Response(body, media_type=media, headers=HEADERS)

    def static(request):
        name = request.path_params["path"]
        if name not in assets:            # a dictionary of the folder's files: no path is ever opened
            return _error(404, f"no such file: {name}")
        body, media = assets[name]
        return Response(body, media_type=media, headers=HEADERS)

    def model(request):
        t = ex.summary.total
        layers = []
        for r in ex.layers():
            layers.append({"name": r.name, "type": r.type, "input": list(r.input or []), "output": list(r.output or []),
                           "input_volume": r.input_volume, "output_volume": r.output_volume, "kernel": r.kernel,
                           "params": r.params, "macs": r.macs, "activations": r.activations,
                           "receptive_field": list(r.receptive_field or []),
                           "filters": r.type == "Conv2d", "derived": r.type in ("Conv2d", "Linear", "MaxPool2d",
                                                                                 "AvgPool2d")})
        return _json({"name": ex.name, "title": ex.title, "trained": ex.trained, "source": ex.source,
                      "data": ex.data, "digit": ex.digit_model, "classes": ex.classes,
                      "input_size": list(ex.input_size), "input_volume": _volume(ex.input_size),
                      "normalize": {"mean": list(ex.mean), "std": list(ex.std)},
                      "total": {k: t[k] for k in ("params", "trainable_params", "macs", "activations")},
                      "layers": layers, "limits": {"upload_bytes": MAX_UPLOAD, "max_count": MAX_COUNT}})

    def explain(request):
        layer = request.path_params["layer"]
        return _json({"layer": layer, "text": ex.explain(layer)})

    def filters(request):
        layer = request.path_params["layer"]
        ex.record(layer)
        mod = ex.module(layer)
        if type(mod).__name__ != "Conv2d":
            raise InputError(f"layer {layer!r} is a {type(mod).__name__}: only Conv2d layers have filters to show")
        w = mod.weight.data                                                    # (K, C/g, kh, kw)
        start, count = _channels(request, w.shape[0])
        b = mod.bias.data[start:start + count] if mod.bias is not None else np.zeros(count, np.float32)
        return _json({"layer": layer, "filters": w.shape[0], "start": start, "count": count,
                      "weight": _array(w[start:start + count]), "bias": np.asarray(b, np.float64).tolist()})

    def samples(request):
        ds = ex.samples()
        if ds is None:
            return _json({"available": False, "count": 0, "items": [],
                          "reason": "an untrained zoo model has no data set" if not ex.trained
                          else f"the run's data set {ex.data!r} cannot be loaded here"})
        per = _int(request, "per_class", 2, 1, 20)
        items, seen = [], {}
        for i, label in enumerate(ds.labels.tolist()):
            if seen.get(label, 0) < per:
                seen[label] = seen.get(label, 0) + 1
                items.append({"index": i, "label": label, "class": ex.classes[label]})
        return _json({"available": True, "count": len(ds), "items": items})

    def sample_png(request):
        index = request.path_params["index"]
        picture, _ = ex.sample(index)
        return Response(_png(picture), media_type="image/png", headers=HEADERS)

    async def predict(request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        label = None
        if ctype.startswith("image/"):
            raw = await request.body()
            picture = await run_in_threadpool(ex.decode, raw)
            source = "upload"
        elif ctype == "multipart/form-data":
            async with request.form(max_files=1, max_fields=4, max_part_size=MAX_UPLOAD) as form:
                upload = form.get("image")
                if upload is None or isinstance(upload, str):
                    raise InputError("multipart form has no file field 'image'")
                raw, name = await upload.read(), upload.filename or "the upload"
            try:
                picture = await run_in_threadpool(ex.decode, raw)
            except InputError as exc:
                raise InputError(f"{name}: {exc}") from None
            source = "upload"
        elif ctype == "application/json":
            raw = await request.body()
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"malformed JSON: {exc}") from None
            if not isinstance(body, dict) or set(body) != {"sample"} or isinstance(body["sample"], bool) \
                    or not isinstance(body["sample"], int):
                raise InputError(f'JSON body must be {{"sample": <int>}}, got {raw[:80].decode("utf-8", "replace")}')
            picture, label = ex.sample(body["sample"])
            source = f"sample {body['sample']}"
        else:
            return _error(415, f"Content-Type {ctype or '(none)'!r} is not accepted: send an image (image/png, "
                               "image/jpeg, ...), a multipart form with a file field 'image', or JSON {\"sample\": i}")
        rec = await run_in_threadpool(ex.run, picture, source)
        return _json(_prediction(ex, rec, label))

    def maps(request):
        rec = ex.get(request.path_params["id"])
        layer = request.path_params["layer"]
        if layer == "input":
            a, values = rec.shown, "the picture the model sees, in [0, 1] (before normalisation)"
        else:
            ex.record(layer)
            if layer not in rec.outputs:
                raise NotFound(f"layer {layer!r} did not run for this input")
            a, values = rec.outputs[layer], "the layer's output"
        full = list(a.shape)
        if a.ndim == 3 and a.shape[1] * a.shape[2] == 1:
            a = a.reshape(-1)                   # C×1×1 (LeNet's C5): one value per channel, sent whole as a vector
        if a.ndim == 3:
            start, count = _channels(request, a.shape[0])
            part = a[start:start + count]
        else:
            start, count, part = 0, 1, a
        out = _array(part)
        finite = a[np.isfinite(a)]
        out.update(layer=layer, full_shape=full, start=start, count=count, values=values,
                   layer_min=float(finite.min()) if finite.size else 0.0,
                   layer_max=float(finite.max()) if finite.size else 0.0)
        return _json(out)

    def value(request):
        rec = ex.get(request.path_params["id"])
        layer = request.path_params["layer"]
        ex.record(layer)
        if layer not in rec.outputs:
            raise NotFound(f"layer {layer!r} did not run for this input")
        q = {k: _int(request, k) for k in ("c", "y", "x")}
        d = _derive.derive(ex.module(layer), ex.record(layer), rec.inputs.get(layer), rec.outputs[layer], layer, **q)
        if len(d["index"]) == 3:
            d["receptive_box"] = ex.receptive_box(layer, d["index"][1], d["index"][2])
        if layer in rec.inputs and rec.inputs[layer].shape == rec.x.shape and np.array_equal(rec.inputs[layer], rec.x):
            d["normalize"] = {"mean": list(ex.mean), "std": list(ex.std)}    # its input is the model's input
        return _json(d)

    def occlusion(request):
        rec = ex.get(request.path_params["id"])
        target = _target(request, ex, rec)
        h = min(ex.input_size[1:])
        size = _int(request, "size", None, 1, h)
        stride = _int(request, "stride", None, 1, h)
        m = ex.occlusion(rec, target, size=size, stride=stride)
        return _json({"target": target, "class": ex.classes[target], "map": _array(m),
                      "probability": float(rec.probabilities[target])})

    def saliency(request):
        rec = ex.get(request.path_params["id"])
        target = _target(request, ex, rec)
        return _json({"target": target, "class": ex.classes[target], "map": _array(ex.saliency(rec, target))})

    def top_patches(request):
        layer = request.path_params["layer"]
        ex.record(layer)
        channel = _int(request, "channel", 0, 0, None)
        k = _int(request, "k", 9, 1, 25)
        found = ex.top_patches(layer, channel, k)
        found["patches"] = _array(found["patches"])
        return _json({"layer": layer, "channel": channel} | found)

    routes = [
        Route("/", page), Route("/static/{path:path}", static),
        Route("/api/model", model), Route("/api/layers/{layer}/explain", explain),
        Route("/api/layers/{layer}/filters", filters), Route("/api/layers/{layer}/top-patches", top_patches),
        Route("/api/samples", samples), Route("/api/samples/{index:int}.png", sample_png),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/inputs/{id}/maps/{layer}", maps), Route("/api/inputs/{id}/value/{layer}", value),
        Route("/api/inputs/{id}/occlusion", occlusion), Route("/api/inputs/{id}/saliency", saliency),
    ]
    middleware = [Middleware(BodyLimit)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={Exception: _on_error, HTTPException: _on_error, TooLarge: _on_error,
                                         NotFound: _on_error, InputError: _on_error, ValueError: _on_error})


def _volume(size) -> str:
    c, *sp = size
    return "×".join(str(s) for s in list(reversed(sp)) + [c])


def _prediction(ex: Explorer, rec, label) -> dict:
    p = rec.probabilities
    order = np.argsort(-p, kind="stable")
    best = int(order[0])
    return {"input_id": rec.id, "source": rec.source,
            "probabilities": [float(v) for v in p], "logits": [float(v) for v in rec.logits],
            "classes": ex.classes,
            "top": [{"index": int(i), "class": ex.classes[i], "probability": float(p[i])} for i in order[:10]],
            "prediction": {"index": best, "class": ex.classes[best], "probability": float(p[best])},
            "label": None if label is None else {"index": label, "class": ex.classes[label]},
            "trained": ex.trained, "seconds": rec.seconds, "cached": rec.hits > 0,
            "layers": [{"name": n, "shape": list(a.shape)} for n, a in rec.outputs.items()]}


def _png(picture: np.ndarray) -> bytes:
    """(C, H, W) in [0, 1] → PNG bytes (grey for one channel, RGB for three)."""
    import io

    from PIL import Image
    a = (np.clip(picture, 0, 1) * 255 + 0.5).astype(np.uint8)
    im = Image.fromarray(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
