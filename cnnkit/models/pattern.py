"""``from_pattern``: build a network from the lecture's layer-pattern notation.

    INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC

Grammar (case-insensitive; ``→`` may replace ``->`` and ``×`` may replace ``*``)::

    pattern := item ("->" item)*
    item    := ("[" pattern "]" | LAYER args? "?"?) ("*" INT)?
    args    := "(" value ("," value)* ")"       value := NUMBER | KEY "=" NUMBER

Layers: ``INPUT`` (optional, first only), ``CONV``, ``POOL`` (``MAXPOOL``/``AVGPOOL`` force the
kind), ``FC``, ``RELU``, ``TANH``, ``SIGMOID``, ``BN``, ``DROPOUT``. ``POOL?`` is the lecture's
optional pool: it is built when the feature map is at least the pool window, skipped otherwise.
A ``Flatten`` is inserted before the first ``FC``; the last ``FC`` has ``num_classes`` outputs.

Defaults (each a keyword argument): 3×3 "same" convolutions at stride 1 (``kernel_size=3``), the
first stage with ``channels=32`` filters, multiplied by ``channel_multiplier=2`` after every pool
(capped at ``max_channels=512``; or ``channels=[32, 64, …]`` per stage), 2×2/2 max pooling
(``pool="max"``, ``pool_size=2``, ``pool_stride=pool_size``), hidden FC layers of ``fc_hidden=512``
(or a list, one per hidden FC), ``dropout=0.5``. Per-layer arguments override them:
``CONV(64)``, ``CONV(64, k=5, s=1, p=2)``, ``POOL(3, 2)``, ``FC(256)``, ``DROPOUT(0.25)``.
"""
from __future__ import annotations

import re

from .. import nn
from ..shape import conv_output_size

__all__ = ["from_pattern", "PatternNet"]

_LAYERS = ("INPUT", "CONV", "POOL", "MAXPOOL", "AVGPOOL", "FC", "RELU", "TANH", "SIGMOID", "BN", "DROPOUT")
_TOKEN = re.compile(r"\s*(?:(->|→)|([\[\]()?,=*×])|(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z_0-9]*))")


class PatternError(ValueError):
    """A pattern that cannot be parsed or built; the message shows the position with a caret."""


def _error(pattern, pos, msg):
    return PatternError(f"from_pattern: {msg} at position {pos}\n  {pattern}\n  {' ' * pos}^")


def _tokenize(pattern):
    tokens, pos = [], 0
    while pos < len(pattern):
        if pattern[pos:].strip() == "":
            break
        m = _TOKEN.match(pattern, pos)
        if not m:
            start = pos + len(pattern[pos:]) - len(pattern[pos:].lstrip())
            raise _error(pattern, start, f"unexpected character {pattern[start]!r}")
        arrow, punct, number, word = m.groups()
        start = m.start(m.lastindex)
        if arrow:
            tokens.append(("->", arrow, start))
        elif punct:
            tokens.append(("*" if punct == "×" else punct, punct, start))
        elif number:
            tokens.append(("NUM", number, start))
        else:
            tokens.append(("WORD", word, start))
        pos = m.end()
    tokens.append(("END", "", len(pattern)))
    return tokens


class _Parser:
    def __init__(self, pattern):
        self.pattern, self.tokens, self.i = pattern, _tokenize(pattern), 0

    def peek(self):
        return self.tokens[self.i]

    def take(self, kind, what):
        tok = self.tokens[self.i]
        if tok[0] != kind:
            found = "end of pattern" if tok[0] == "END" else repr(tok[1])
            raise _error(self.pattern, tok[2], f"expected {what}, found {found}")
        self.i += 1
        return tok

    def parse(self):
        seq = self.sequence()
        tok = self.peek()
        if tok[0] != "END":
            raise _error(self.pattern, tok[2], f"expected '->' or end of pattern, found {tok[1]!r}")
        return seq

    def sequence(self):
        items = [self.item()]
        while self.peek()[0] == "->":
            self.i += 1
            items.append(self.item())
        return items

    def item(self):
        tok = self.peek()
        if tok[0] == "[":
            self.i += 1
            node = ("group", self.sequence(), tok[2])
            self.take("]", "']' to close the '[' at position %d" % tok[2])
        elif tok[0] == "WORD":
            self.i += 1
            name = tok[1].upper()
            if name not in _LAYERS:
                raise _error(self.pattern, tok[2], f"unknown layer {tok[1]!r} (expected one of {', '.join(_LAYERS)})")
            args, kwargs = self.arguments() if self.peek()[0] == "(" else ([], {})
            optional = False
            if self.peek()[0] == "?":
                self.i += 1
                optional = True
            node = ("layer", (name, args, kwargs, optional), tok[2])
        else:
            found = "end of pattern" if tok[0] == "END" else repr(tok[1])
            raise _error(self.pattern, tok[2], f"expected a layer name or '[', found {found}")
        if self.peek()[0] == "*":
            self.i += 1
            count = self.take("NUM", "a repeat count after '*'")
            if not count[1].isdigit():
                raise _error(self.pattern, count[2], f"repeat count must be a whole number, got {count[1]}")
            node = ("repeat", (node, int(count[1])), count[2])
        return node

    def arguments(self):
        self.take("(", "'('")
        args, kwargs = [], {}
        while True:
            tok = self.peek()
            if tok[0] == "WORD":
                self.i += 1
                self.take("=", f"'=' after {tok[1]!r}")
                kwargs[tok[1].lower()] = (_number(self.take("NUM", "a number")[1]), tok[2])
            else:
                num = self.take("NUM", "a number or key=number")
                if kwargs:
                    raise _error(self.pattern, num[2], "positional argument after a keyword argument")
                args.append((_number(num[1]), num[2]))
            if self.peek()[0] == ",":
                self.i += 1
                continue
            self.take(")", "',' or ')'")
            return args, kwargs


def _number(text):
    return float(text) if "." in text else int(text)


def _expand(nodes, out):
    for kind, value, pos in nodes:
        if kind == "layer":
            out.append((value, pos))
        elif kind == "group":
            _expand(value, out)
        else:
            node, count = value
            for _ in range(count):
                _expand([node], out)
    return out


class PatternNet(nn.Sequential):
    """The ``Sequential`` built by :func:`from_pattern`; ``pattern`` holds the source text."""

    def __init__(self, layers, pattern: str):
        super().__init__(*layers)
        self.pattern = pattern

    def extra_repr(self) -> str:
        return f"pattern={self.pattern!r}"


def from_pattern(pattern: str, input_size=(3, 32, 32), num_classes: int = 10, channels=32,
                 channel_multiplier: int = 2, max_channels: int = 512, kernel_size: int = 3,
                 pool: str = "max", pool_size: int = 2, pool_stride: int | None = None, fc_hidden=512,
                 dropout: float = 0.5) -> PatternNet:
    """Build a network from the lecture's layer-pattern notation (see the module docstring).

    Args:
        pattern (str): e.g. ``"INPUT -> [[CONV -> RELU]*2 -> POOL]*3 -> [FC -> RELU]*2 -> FC"``.
        input_size (tuple): ``(C, H, W)`` of the input (default ``(3, 32, 32)``).
        num_classes (int): outputs of the last FC.
        channels (int or list): filters of the first conv stage (doubling after each pool), or one
            value per stage (a stage ends at a pool).
        channel_multiplier, max_channels (int): the doubling rule and its cap.
        kernel_size (int): F of every conv (odd; "same" padding ``(F − 1)/2``).
        pool (str): ``'max'`` or ``'avg'``. pool_size, pool_stride (int): the pool window (2×2/2).
        fc_hidden (int or list): outputs of every FC but the last.
        dropout (float): probability of each ``DROPOUT``.

    Returns:
        PatternNet: a ``Sequential`` with ``config = {"name": "from_pattern", "kwargs": {...}}``.

    Raises:
        ValueError: a parse error, or a layer that cannot be built, with the position and a caret.

    Example::

        >>> model = cnnkit.models.from_pattern("INPUT -> [CONV -> RELU -> POOL]*2 -> FC -> RELU -> FC")
        >>> # 32×32×3 → 32×32×32 → 16×16×32 → 16×16×64 → 8×8×64 → 4096 → 512 → 10
    """
    call = dict(pattern=pattern, input_size=list(input_size), num_classes=num_classes, channels=channels,
                channel_multiplier=channel_multiplier, max_channels=max_channels, kernel_size=kernel_size,
                pool=pool, pool_size=pool_size, pool_stride=pool_stride, fc_hidden=fc_hidden, dropout=dropout)
    if not isinstance(pattern, str):
        raise TypeError(f"from_pattern: pattern must be a string, got {type(pattern).__name__}")
    if len(tuple(input_size)) != 3 or not all(isinstance(v, int) and v > 0 for v in input_size):
        raise ValueError(f"from_pattern: input_size must be (C, H, W) of positive ints, got {input_size!r}")
    if pool not in ("max", "avg"):
        raise ValueError(f"from_pattern: pool must be 'max' or 'avg', got pool={pool!r}")
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"from_pattern: kernel_size must be a positive odd int (for 'same' padding), "
                         f"got kernel_size={kernel_size!r}")
    layers = _expand(_Parser(pattern).parse(), [])
    if layers and layers[0][0][0] == "INPUT":
        layers = layers[1:]
    for (name, *_), pos in layers:
        if name == "INPUT":
            raise _error(pattern, pos, "INPUT may only start the pattern")
    n_fc = sum(1 for (name, *_), _ in layers if name == "FC")
    stage_channels = list(channels) if isinstance(channels, (list, tuple)) else None
    hidden = list(fc_hidden) if isinstance(fc_hidden, (list, tuple)) else None
    c, h, w = input_size
    flat = None            # number of features once flattened
    stage, fc_seen, modules = 0, 0, []
    for (name, args, kwargs, optional), pos in layers:
        def arg(i, key, default, integer=True, _args=args, _kwargs=kwargs, _name=name, _pos=pos):
            if key in _kwargs:
                value, where = _kwargs[key]
            elif i < len(_args):
                value, where = _args[i]
            else:
                return default
            if integer and not isinstance(value, int):
                raise _error(pattern, where, f"{_name} argument {key} must be a whole number, got {value}")
            if not integer and not 0 <= value < 1:
                raise _error(pattern, where, f"{_name} argument {key} must be in [0, 1), got {value}")
            return value

        def spatial(what, _pos=pos):
            if flat is not None:
                raise _error(pattern, _pos, f"{what} after FC (the volume is already flattened)")

        allowed = {"CONV": ("out", "k", "s", "p"), "POOL": ("k", "s"), "MAXPOOL": ("k", "s"), "AVGPOOL": ("k", "s"),
                   "FC": ("out",), "DROPOUT": ("p",)}.get(name, ())
        if len(args) > len(allowed):
            raise _error(pattern, args[len(allowed)][1], f"{name} takes at most {len(allowed)} argument"
                                                         f"{'s' if len(allowed) != 1 else ''}")
        for key, (_, where) in kwargs.items():
            if key not in allowed:
                raise _error(pattern, where, f"{name} has no argument {key!r}"
                                             + (f" (it takes {', '.join(allowed)})" if allowed else ""))
        if name == "CONV":
            spatial("CONV")
            if stage_channels is not None:
                if stage >= len(stage_channels):
                    raise _error(pattern, pos, f"channels lists {len(stage_channels)} stages, this CONV is in "
                                               f"stage {stage + 1}")
                default_out = stage_channels[stage]
            else:
                default_out = min(max_channels, channels * channel_multiplier ** stage)
            out = arg(0, "out", default_out)
            k = arg(1, "k", kernel_size)
            s = arg(2, "s", 1)
            p = arg(3, "p", (k - 1) // 2)
            ho, wo = conv_output_size(h, k, s, p), conv_output_size(w, k, s, p)
            if ho < 1 or wo < 1:
                raise _error(pattern, pos, f"CONV {k}×{k}/{s} (padding {p}) does not fit the {h}×{w} input")
            modules.append(nn.Conv2d(c, out, k, stride=s, padding=p))
            c, h, w = out, ho, wo                                                   # (C, H, W)
        elif name in ("POOL", "MAXPOOL", "AVGPOOL"):
            spatial(name)
            k = arg(0, "k", pool_size)
            s = arg(1, "s", pool_stride if pool_stride is not None else k)
            ho, wo = conv_output_size(h, k, s), conv_output_size(w, k, s)
            if ho < 1 or wo < 1:
                if optional:
                    continue
                raise _error(pattern, pos, f"{name} {k}×{k}/{s} does not fit the {h}×{w} input")
            kind = {"MAXPOOL": "max", "AVGPOOL": "avg"}.get(name, pool)
            modules.append((nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(k, stride=s))
            h, w = ho, wo
            stage += 1
        elif name == "FC":
            if flat is None:
                modules.append(nn.Flatten())
                flat = c * h * w
            fc_seen += 1
            if fc_seen == n_fc:
                default_out = num_classes
            elif hidden is not None:
                default_out = hidden[min(fc_seen - 1, len(hidden) - 1)]
            else:
                default_out = fc_hidden
            out = arg(0, "out", default_out)
            modules.append(nn.Linear(flat, out))
            flat = out
        elif name == "BN":
            modules.append(nn.BatchNorm2d(c) if flat is None else nn.BatchNorm1d(flat))
        elif name == "DROPOUT":
            modules.append(nn.Dropout(arg(0, "p", dropout, integer=False)))
        else:
            modules.append({"RELU": nn.ReLU, "TANH": nn.Tanh, "SIGMOID": nn.Sigmoid}[name]())
    if not modules:
        raise _error(pattern, len(pattern), "the pattern has no layers")
    model = PatternNet(modules, pattern)
    model.config = {"name": "from_pattern", "kwargs": call}
    return model
