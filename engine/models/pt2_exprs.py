"""The symbolic shape expressions of a ``.pt2`` file, checked before torch sees them.

``torch.export.load`` hands each expression (``expr_str``, sympy's ``srepr``) to ``sympy.sympify``, which
``eval``s it: a name other than sympy's constructors would run code, and an integer power such as
``s0 + 9**9**9**9`` is computed by Python's big-integer arithmetic for ever, in C, where no signal handler or
thread can stop it. ``check_sym_expr`` admits only sympy notation and bounds the size of every number the
expression can produce (``MAX_EXPR_BITS``), reading it with ``ast.parse``, which evaluates nothing.
"""

from __future__ import annotations

import ast
import math
import re

MAX_EXPR_CHARS = 20_000
# the largest integer (in bits) any part of an expression may reach: shape arithmetic stays far below it, and
# numbers of this size are computed in microseconds
MAX_EXPR_BITS = 2**16
SYMBOL_BITS = 64  # a symbol stands for a shape size (an int64)
MAX_KEYWORD = 4096  # a constructor's keyword number (Float's precision in bits)
_POWERS = {"Pow", "PowByNatural", "FloatPow"}
_PRODUCTS = {"Mul"}
_SHIFTS = {"LShift"}
_LOG2_10 = math.log2(10)

# sympy constructors a symbolic shape expression is written with (torch's _print_sympy is sympy's srepr)
_SYMPY_NAMES = {
    "Symbol",
    "Integer",
    "Rational",
    "Float",
    "Add",
    "Mul",
    "Pow",
    "Mod",
    "Max",
    "Min",
    "Abs",
    "Equality",
    "Unequality",
    "StrictLessThan",
    "LessThan",
    "StrictGreaterThan",
    "GreaterThan",
    "Eq",
    "Ne",
    "Lt",
    "Le",
    "Gt",
    "Ge",
    "And",
    "Or",
    "Not",
    "BooleanTrue",
    "BooleanFalse",
    "One",
    "Zero",
    "NegativeOne",
    "Half",
    "Infinity",
    "NegativeInfinity",
    "ComplexInfinity",
    "NaN",
    "IntInfinity",
    "NegativeIntInfinity",
    "floor",
    "ceiling",
    "Piecewise",
    "ExprCondPair",
    "True",
    "False",
    "true",
    "false",
    "oo",
    # torch.utils._sympy.functions
    "FloorDiv",
    "ModularIndexing",
    "Where",
    "PythonMod",
    "CleanDiv",
    "CeilToInt",
    "FloorToInt",
    "CeilDiv",
    "LShift",
    "RShift",
    "IsNonOverlappingAndDenseIndicator",
    "RoundToInt",
    "RoundDecimal",
    "ToFloat",
    "FloatPow",
    "PowByNatural",
    "IntTrueDiv",
    "FloatTrueDiv",
    "TruncToFloat",
    "TruncToInt",
    "Identity",
    "BitwiseFn_bitwise_and",
    "BitwiseFn_bitwise_or",
    "BitwiseFn_bitwise_xor",
}
_STRING_TAKERS = {"Symbol", "Float", "Integer", "Rational"}  # constructors whose first argument may be text
_TOKEN = re.compile(
    r"\s+|(?P<num>\d+(\.\d+)?([eE][+-]?\d+)?)|(?P<name>[A-Za-z_]\w*)|(?P<str>'[^']*')"
    r"|(?P<op>==|!=|<=|>=|\*\*|//|[-+*/%(),<>=&|~])"
)
_STRING_BODY = re.compile(r"[A-Za-z0-9_.+-]*")


class UnsafePt2File(ValueError):
    """A .pt2 file that could run code when loaded; ``reason`` says what in it would."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def check_sym_expr(expr: str) -> None:
    """Raise ``UnsafePt2File`` unless ``expr`` is a sympy srepr made of known constructors, numbers, symbol names
    and keyword flags (no other name, no attribute access, text only as the name of a Symbol), no longer than
    ``MAX_EXPR_CHARS``, whose numbers stay below ``MAX_EXPR_BITS`` bits however it is evaluated."""
    if len(expr) > MAX_EXPR_CHARS:
        raise UnsafePt2File(
            f"a symbolic shape expression is {len(expr):,} characters long; torch writes far shorter ones "
            f"(at most {MAX_EXPR_CHARS:,} are read)"
        )
    pos, tokens = 0, []
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise UnsafePt2File(
                f"a symbolic shape expression holds {expr[pos : pos + 20]!r}, which is not sympy "
                "notation (torch evaluates these expressions as Python)"
            )
        pos = m.end()
        if m.lastgroup:
            tokens.append((m.lastgroup, m.group(m.lastgroup)))
    for i, (kind, text) in enumerate(tokens):
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "name":
            keyword = nxt == "=" and re.fullmatch(r"[a-z]+", text) is not None  # Symbol('s0', integer=True)
            if not (keyword or text in _SYMPY_NAMES or re.fullmatch(r"[a-z]+\d+", text)):
                raise UnsafePt2File(
                    f"a symbolic shape expression calls {text!r}, which is not a sympy constructor "
                    "(torch evaluates these expressions as Python)"
                )
        elif kind == "str":
            before = tokens[i - 2][1] if i >= 2 and tokens[i - 1][1] == "(" else ""
            if before not in _STRING_TAKERS or not _STRING_BODY.fullmatch(text[1:-1]):
                raise UnsafePt2File(
                    f"a symbolic shape expression holds the text {text[:30]!r} outside a Symbol's "
                    "name (torch evaluates these expressions as Python)"
                )
    _check_size(expr)


def _refuse_size(what: str) -> UnsafePt2File:
    return UnsafePt2File(
        f"a symbolic shape expression {what}: a number beyond {MAX_EXPR_BITS:,} bits, which sympy would compute "
        "for minutes or for ever (torch evaluates these expressions when it loads the file)"
    )


def _check_size(expr: str) -> None:
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise UnsafePt2File(
            f"a symbolic shape expression cannot be read as an expression ({type(e).__name__})"
        ) from None
    try:
        _bits(tree.body)
    except RecursionError:
        raise UnsafePt2File("a symbolic shape expression is nested too deeply") from None


def _number_bits(text: str) -> float:
    """Bits of a number written as text (``'387420489'``, ``'1.5e300'``), without converting it; 1 for a name."""
    m = re.fullmatch(r"\s*[+-]?(\d*)(?:\.\d*)?(?:[eE]([+-]?\d+))?\s*", text)
    if m is None:
        if re.fullmatch(r"[+-]?[A-Za-z_]\w*", text):  # a Symbol's name, 'inf', '-nan'
            return 1.0
        raise UnsafePt2File(f"a symbolic shape expression holds the text {text[:30]!r}, neither a number nor a name")
    exponent = m.group(2) or "0"
    if len(exponent.lstrip("+-")) > 9:
        raise _refuse_size(f"holds the number {text[:30]!r}")
    digits = len(m.group(1).lstrip("0"))
    return max(0.0, (digits + int(exponent)) * _LOG2_10) + 1


def _bits(node: ast.AST) -> float:
    """An upper bound of log2(|value| + 1) over every value ``node`` can take (a symbol: any int64)."""
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or v is None:
            return 1.0
        if isinstance(v, int):
            return float(v.bit_length())
        if isinstance(v, float):
            if not math.isfinite(v):
                raise _refuse_size(f"holds the number {v!r}")
            return math.log2(abs(v) + 1) + 1
        return _number_bits(v) if isinstance(v, str) else 1.0
    if isinstance(node, ast.Name):
        return float(SYMBOL_BITS)
    if isinstance(node, ast.UnaryOp):
        return _bits(node.operand)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):
            return _power(node.left, node.right)
        if isinstance(node.op, ast.LShift):
            return _shift(node.left, node.right)
        left, right = _bits(node.left), _bits(node.right)
        total = left + right if isinstance(node.op, ast.Mult) else max(left, right) + 1
        return _bounded(total, "multiplies numbers")
    if isinstance(node, ast.Compare):
        return max(_bits(n) for n in (node.left, *node.comparators))
    if isinstance(node, ast.BoolOp):
        return max(_bits(n) for n in node.values)
    if isinstance(node, ast.Tuple):
        return max((_bits(n) for n in node.elts), default=1.0)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        for kw in node.keywords:
            if isinstance(kw.value, ast.Constant) and _bits(kw.value) > math.log2(MAX_KEYWORD) + 1:
                raise _refuse_size(f"passes {kw.arg}={kw.value.value!r}")
        name, args = node.func.id, node.args
        if name in _POWERS and len(args) == 2:
            return _power(args[0], args[1])
        if name in _SHIFTS and len(args) == 2:
            return _shift(args[0], args[1])
        sizes = [_bits(a) for a in args] or [1.0]
        total = sum(sizes) if name in _PRODUCTS else max(sizes) + math.log2(len(sizes)) + 1
        return _bounded(total, f"makes {name}() of numbers")
    raise UnsafePt2File(f"a symbolic shape expression holds {type(node).__name__} syntax, which sympy never writes")


def _bounded(bits: float, what: str) -> float:
    if bits > MAX_EXPR_BITS:
        raise _refuse_size(what)
    return bits


def _power(base: ast.AST, exponent: ast.AST) -> float:
    exp_bits = _bits(exponent)
    if exp_bits > math.log2(MAX_EXPR_BITS) + 1:  # 2 ** exp_bits is already too large to be an exponent
        raise _refuse_size("raises a number to a power too large to compute")
    return _bounded(max(_bits(base), 1.0) * 2**exp_bits, "raises a number to a power too large to compute")


def _shift(value: ast.AST, by: ast.AST) -> float:
    by_bits = _bits(by)
    if by_bits > math.log2(MAX_EXPR_BITS) + 1:
        raise _refuse_size("shifts a number left too far")
    return _bounded(_bits(value) + 2**by_bits, "shifts a number left too far")
