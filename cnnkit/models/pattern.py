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

Initialisation (:func:`init_pattern`): each CONV and FC is drawn for the activation that follows it —
He et al. 2015 (``std = √(2 / fan_in)``) before a ``RELU``, Glorot with gain 5/3 before a ``TANH``
(PyTorch's ``calculate_gain``), Glorot before a ``SIGMOID`` or nothing — with zero biases, and the
last FC (the logits) at ``std = 0.01``, so training starts from the uniform prediction (loss ln K).
PyTorch's layer default (``kaiming_uniform_(a=√5)``: variance 1/(3·fan_in)) keeps a sixth of the signal's
power per CONV → RELU, so the README's eight-layer pattern ``[[CONV -> RELU]*2 -> POOL]*3 -> [FC ->
RELU]*2 -> FC`` started with its input's share of the logits near zero and did not learn at all (loss
ln 3 after 40 epochs with SGD; 100 % with He's initialisation).
"""
from __future__ import annotations

import re
from collections import namedtuple
from dataclasses import dataclass

from .. import nn
from ..nn import init
from ..shape import conv_output_size

__all__ = ["from_pattern", "PatternNet", "init_pattern"]

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


# ----------------------------------------------------------------------------- the builders
# The volume between layers: (C, H, W) while the maps are spatial; ``flat`` (the number of features) once an
# FC has flattened them.
Volume = namedtuple("Volume", "c h w flat")


@dataclass
class _Layer:
    """One layer of the expanded pattern, with what its arguments and errors need."""

    name: str
    args: list        # [(value, position)]
    kwargs: dict      # {key: (value, position)}
    optional: bool
    pos: int
    pattern: str

    def error(self, msg: str, where: int | None = None):
        return _error(self.pattern, self.pos if where is None else where, msg)

    def arg(self, i: int, key: str, default, integer: bool = True):
        """The ``i``-th positional argument or ``key=``, else ``default`` (checked: a whole number, or in [0, 1))."""
        if key in self.kwargs:
            value, where = self.kwargs[key]
        elif i < len(self.args):
            value, where = self.args[i]
        else:
            return default
        if integer and not isinstance(value, int):
            raise self.error(f"{self.name} argument {key} must be a whole number, got {value}", where)
        if not integer and not 0 <= value < 1:
            raise self.error(f"{self.name} argument {key} must be in [0, 1), got {value}", where)
        return value

    def spatial(self, vol: Volume) -> None:
        if vol.flat is not None:
            raise self.error(f"{self.name} after FC (the volume is already flattened)")


@dataclass
class _Options:
    """``from_pattern``'s defaults, and the counters the defaults depend on (stage, FC layers seen)."""

    channels: object
    channel_multiplier: int
    max_channels: int
    kernel_size: int
    pool: str
    pool_size: int
    pool_stride: int | None
    fc_hidden: object
    dropout: float
    num_classes: int
    n_fc: int = 0          # FC layers in the whole pattern (the last gets num_classes outputs)
    stage: int = 0         # pools built so far
    fc_seen: int = 0

    def conv_channels(self, layer: _Layer) -> int:
        if isinstance(self.channels, (list, tuple)):
            if self.stage >= len(self.channels):
                raise layer.error(f"channels lists {len(self.channels)} stages, this CONV is in stage {self.stage + 1}")
            return self.channels[self.stage]
        return min(self.max_channels, self.channels * self.channel_multiplier ** self.stage)

    def fc_outputs(self) -> int:
        if self.fc_seen == self.n_fc:
            return self.num_classes
        if isinstance(self.fc_hidden, (list, tuple)):
            return self.fc_hidden[min(self.fc_seen - 1, len(self.fc_hidden) - 1)]
        return self.fc_hidden


def _conv(layer: _Layer, vol: Volume, opt: _Options):
    layer.spatial(vol)
    out = layer.arg(0, "out", opt.conv_channels(layer))
    k = layer.arg(1, "k", opt.kernel_size)
    s = layer.arg(2, "s", 1)
    p = layer.arg(3, "p", (k - 1) // 2)
    ho, wo = conv_output_size(vol.h, k, s, p), conv_output_size(vol.w, k, s, p)
    if ho < 1 or wo < 1:
        raise layer.error(f"CONV {k}×{k}/{s} (padding {p}) does not fit the {vol.h}×{vol.w} input")
    return [nn.Conv2d(vol.c, out, k, stride=s, padding=p)], Volume(out, ho, wo, None)        # (C, H, W)


def _pool(layer: _Layer, vol: Volume, opt: _Options):
    layer.spatial(vol)
    k = layer.arg(0, "k", opt.pool_size)
    s = layer.arg(1, "s", opt.pool_stride if opt.pool_stride is not None else k)
    ho, wo = conv_output_size(vol.h, k, s), conv_output_size(vol.w, k, s)
    if ho < 1 or wo < 1:
        if layer.optional:            # the lecture's POOL?: only where the map is at least the window
            return [], vol
        raise layer.error(f"{layer.name} {k}×{k}/{s} does not fit the {vol.h}×{vol.w} input")
    kind = {"MAXPOOL": "max", "AVGPOOL": "avg"}.get(layer.name, opt.pool)
    opt.stage += 1
    return [(nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(k, stride=s)], Volume(vol.c, ho, wo, None)


def _fc(layer: _Layer, vol: Volume, opt: _Options):
    modules, features = [], vol.flat
    if features is None:                       # the first FC flattens the maps
        modules.append(nn.Flatten())
        features = vol.c * vol.h * vol.w
    opt.fc_seen += 1
    out = layer.arg(0, "out", opt.fc_outputs())
    return modules + [nn.Linear(features, out)], vol._replace(flat=out)


def _bn(layer: _Layer, vol: Volume, opt: _Options):
    return [nn.BatchNorm2d(vol.c) if vol.flat is None else nn.BatchNorm1d(vol.flat)], vol


def _dropout(layer: _Layer, vol: Volume, opt: _Options):
    return [nn.Dropout(layer.arg(0, "p", opt.dropout, integer=False))], vol


def _activation(layer: _Layer, vol: Volume, opt: _Options):
    return [{"RELU": nn.ReLU, "TANH": nn.Tanh, "SIGMOID": nn.Sigmoid}[layer.name]()], vol


# layer name → (builder, the arguments it takes in order); each builder returns (modules, the new volume)
_LAYER_BUILDERS = {"CONV": (_conv, ("out", "k", "s", "p")), "POOL": (_pool, ("k", "s")), "MAXPOOL": (_pool, ("k", "s")),
             "AVGPOOL": (_pool, ("k", "s")), "FC": (_fc, ("out",)), "BN": (_bn, ()), "DROPOUT": (_dropout, ("p",)),
             "RELU": (_activation, ()), "TANH": (_activation, ()), "SIGMOID": (_activation, ())}


def _check_arguments(layer: _Layer, allowed: tuple) -> None:
    if len(layer.args) > len(allowed):
        raise layer.error(f"{layer.name} takes at most {len(allowed)} argument{'s' if len(allowed) != 1 else ''}",
                          layer.args[len(allowed)][1])
    for key, (_, where) in layer.kwargs.items():
        if key not in allowed:
            raise layer.error(f"{layer.name} has no argument {key!r}"
                              + (f" (it takes {', '.join(allowed)})" if allowed else ""), where)


_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.Sigmoid)


def init_pattern(layers) -> None:
    """Initialise the CONV and FC layers of a pattern's layer list for the activation after each (see the
    module docstring): He's ``std = √(2 / fan_in)`` before ReLU, Glorot (gain 5/3) before tanh, Glorot before
    sigmoid or none; biases 0; a last FC (the logits) ``std = 0.01``."""
    layers = list(layers)
    weighted = [i for i, m in enumerate(layers) if isinstance(m, (nn.Conv2d, nn.Linear))]
    for i in weighted:
        m = layers[i]
        after = next((x for x in layers[i + 1:] if isinstance(x, _ACTIVATIONS + (nn.Conv2d, nn.Linear))), None)
        if i == weighted[-1] and isinstance(m, nn.Linear):
            init.normal_(m.weight, 0.0, 0.01)                     # the logits: start from the uniform prediction
        elif isinstance(after, nn.ReLU):
            init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(after, nn.Tanh):
            init.xavier_normal_(m.weight, gain=init.calculate_gain("tanh"))
        else:
            init.xavier_normal_(m.weight)
        if m.bias is not None:
            init.zeros_(m.bias)


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
    opt = _Options(channels, channel_multiplier, max_channels, kernel_size, pool, pool_size, pool_stride, fc_hidden,
                   dropout, num_classes, n_fc=sum(1 for (name, *_), _ in layers if name == "FC"))
    vol = Volume(*input_size, None)
    modules = []
    for (name, args, kwargs, optional), pos in layers:
        layer = _Layer(name, args, kwargs, optional, pos, pattern)
        build, allowed = _LAYER_BUILDERS[name]
        _check_arguments(layer, allowed)
        built, vol = build(layer, vol, opt)
        modules += built
    if not modules:
        raise _error(pattern, len(pattern), "the pattern has no layers")
    init_pattern(modules)
    model = PatternNet(modules, pattern)
    model.config = {"name": "from_pattern", "kwargs": call}
    return model
