"""The explorer: ``cnnkit serve`` — any run or zoo model in the browser.

>>> from cnnkit.serve import open_explorer, create_app
>>> app = create_app(open_explorer("runs/lenet5-digits"))     # an ASGI app (Starlette); uvicorn serves it

The page (``static/``: plain HTML, CSS and JavaScript, no build step) shows the architecture with the
report's numbers, every layer's activation maps for a drawn, uploaded or picked image, the softmax, and
the arithmetic behind any value clicked (``w·x + b`` of a convolution, a pooling window).
"""
from .app import MAX_UPLOAD, create_app
from .backend import Explorer, InputError, NotFound, open_explorer

__all__ = ["create_app", "open_explorer", "Explorer", "InputError", "NotFound", "MAX_UPLOAD"]
