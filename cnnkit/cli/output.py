"""What every command's results go through: strict JSON, and text to stdout or (atomically) to a file."""
from __future__ import annotations

import json
import sys

__all__ = ["to_json", "emit"]


def to_json(obj) -> str:
    """Strict JSON, indented, UTF-8 as it is (``"28×28×6"``), one trailing newline: a value that is not
    finite (NaN, ±Infinity) is refused here rather than written as a token that strict parsers reject."""
    return json.dumps(obj, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def emit(text: str, output=None) -> None:
    """``text`` to stdout, or written atomically to ``output`` (with a ``wrote PATH`` line on stderr)."""
    if output:
        from ..files import atomic_write
        atomic_write(output, text)
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
