"""Learning-engine expressions: sums of products, as Loihi's learning engine evaluates them.

A rule for one synaptic variable ``z`` (``w``, ``t`` or ``d``) is

    dz = sum_p  m_p * 2**e_p * dependency_p * prod_f (value_f + c_f)

``dependency`` is ``x0`` (the pre neuron spiked in the epoch), ``y0`` (the post neuron
spiked) or ``u`` with decimation ``k`` (1 once every ``2**k`` epochs). A factor is a trace
(``x1 x2 y1 y2 y3``, evaluated at the time the dependency says), a synaptic variable
(``w t d``), a further dependency (``x0 y0``, width 1), Loihi 1's reward trace ``r1`` (where
the profile lists it), optionally plus an integer constant ``c``, or ``sgn(var + c)`` for a
synaptic variable. The text syntax is Lava's rule-string
syntax (``"2^-2*x1*y0 - 2^-2*y1*x0"``); :func:`parse` reads it and :func:`format_expr`
writes it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NoReturn

from ..errors import NeurocompError, Problem

DEPENDENCIES = ("x0", "y0", "u")
TRACES = ("x1", "x2", "y1", "y2", "y3")
REWARD_TRACES = ("r1",)  # Loihi 1's reward trace (NxSDK's rule strings; absent from Lava and Loihi 2)
SYNAPTIC_VARIABLES = ("w", "t", "d")
FACTOR_VARIABLES = ("x0", "y0") + TRACES + SYNAPTIC_VARIABLES  # Lava's (and Loihi 2's) factors


@dataclass(frozen=True)
class Factor:
    """``var + const`` (or ``sgn(var + const)`` when ``sgn``; only for w, t, d)."""

    var: str
    const: int = 0
    sgn: bool = False


@dataclass(frozen=True)
class Product:
    """``mantissa * 2**exponent * dependency * prod(factors)``; ``decimate`` is ``k`` of ``u_k``."""

    dependency: str
    mantissa: int
    exponent: int
    factors: tuple[Factor, ...] = ()
    decimate: int | None = None


@dataclass(frozen=True)
class Expr:
    """A sum of products (the right-hand side of ``dw``, ``dt`` or ``dd``)."""

    products: tuple[Product, ...]

    @property
    def decimate(self) -> int | None:
        ks = {p.decimate for p in self.products if p.decimate is not None}
        return ks.pop() if ks else None

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(f.var for p in self.products for f in p.factors) | {p.dependency for p in self.products}

    def __str__(self) -> str:
        return format_expr(self)


# -- errors ---------------------------------------------------------------------------------


class RuleSyntaxError(NeurocompError, ValueError):
    """A rule string that does not parse, or that the learning engine cannot run."""

    kind = "learning rule"


# -- tokens ---------------------------------------------------------------------------------

# Lava's three literal forms, m*2^e, 2^e and m (symbolic_equation.Literal.find). Lava deletes
# spaces before matching, so a literal may contain whitespace. Signs are never part of a
# literal: Lava matches '+' and '-' as operators first.
_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<float>\d*\.\d+(?:[eE][+-]?\d+)?|\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)"
    r"|(?P<lit>\d+\s*\*\s*2\s*\^\s*[+-]?\s*\d+|2\s*\^\s*[+-]?\s*\d+|\d+)"
    r"|(?P<sgn>sgn\s*\()"
    r"|(?P<name>[A-Za-z_]\w*)"
    r"|(?P<punct>[-+*()])"
)
_LEADING_ZERO_RE = re.compile(r"(?<!\d)0\d")


@dataclass(frozen=True)
class _Token:
    """``kind`` is ``lit`` (value ``(m, e)``), ``dep`` (``x0``/``y0``), ``u`` (value ``k``),
    ``var``, ``sgn`` (``sgn(``), one of ``+ - * ( )``, or ``end``."""

    kind: str
    text: str
    col: int  # 1-based column in the original string
    value: object = None


@dataclass
class _Draft:
    """One product while it is being read (mutable: filled token by token)."""

    index: int
    col: int
    mantissa: int = 1
    exponent: int = 0
    dependency: str | None = None
    decimate: int | None = None
    dep_col: int = 0
    factors: list[Factor] = field(default_factory=list)
    factor_cols: list[tuple[int, int | None]] = field(default_factory=list)  # (factor, its constant)


def _literal(text: str) -> tuple[int, int]:
    """``(m, e)`` of a literal token (``m*2^e``, ``2^e`` or ``m``)."""
    compact = re.sub(r"\s+", "", text)
    if "^" not in compact:
        return int(compact), 0
    head, _, exp = compact.rpartition("^")
    return (int(head[: -len("*2")]) if "*" in head else 1), int(exp)


class _Parser:
    """Recursive descent over Lava's rule syntax (see :func:`parse`); raises on the first
    syntax error. Produces one :class:`_Draft` per product, not yet normalised or checked."""

    def __init__(self, text: str, target: str):
        self.text = text
        self.where = f"rule {target}"
        self.tokens = self._tokenize()
        self.pos = 0

    # -- helpers
    def fail(self, message: str) -> NoReturn:
        raise RuleSyntaxError([Problem(self.where, f"{self.text!r}: {message}")])

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def next(self) -> _Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    # -- tokens
    def _tokenize(self) -> list[_Token]:
        text, out, i = self.text, [], 0
        while i < len(text):
            m = _TOKEN_RE.match(text, i)
            col = i + 1
            if m is None:
                hint = " (only powers of two are written with '^': 2^e or m*2^e)" if text[i] == "^" else ""
                self.fail(f"unexpected character {text[i]!r} at column {col}{hint}")
            i, kind, s = m.end(), m.lastgroup, m.group()
            if kind == "ws":
                continue
            if kind == "float":
                self.fail(f"literal {s!r} at column {col} is not an integer; write it as m*2^e (0.5 is 2^-1)")
            if kind == "lit":
                if _LEADING_ZERO_RE.search(re.sub(r"\s+", "", s)):
                    self.fail(f"literal {s!r} at column {col} has a leading zero, which Lava cannot read")
                out.append(_Token("lit", s, col, _literal(s)))
            elif kind == "sgn":
                out.append(_Token("sgn", s, col))
            elif kind == "punct":
                out.append(_Token(s, s, col))
            elif s in ("x0", "y0"):
                out.append(_Token("dep", s, col, s))
            elif re.fullmatch(r"u\d", s):
                out.append(_Token("u", s, col, int(s[1])))
            elif s in TRACES or s in REWARD_TRACES or s in SYNAPTIC_VARIABLES:
                out.append(_Token("var", s, col, s))
            elif s == "u":
                self.fail(f"'u' at column {col} needs its decimation k: u0..u9 (1 once every 2^k epochs)")
            elif re.fullmatch(r"u\d+", s):
                self.fail(f"{s!r} at column {col}: u_k takes a single digit k (u0..u9)")
            else:
                known = ", ".join(("x0", "y0", "u0..u9") + TRACES + REWARD_TRACES + SYNAPTIC_VARIABLES)
                self.fail(f"unknown variable {s!r} at column {col} (known: {known})")
        out.append(_Token("end", "", len(text) + 1))
        return out

    # -- grammar: rule = [+-] product {(+|-) product}; product = factor {* factor}
    def rule(self) -> list[_Draft]:
        if self.peek().kind == "end":
            self.fail("the rule is empty")
        drafts: list[_Draft] = []
        while True:
            sign = 1
            if self.peek().kind in ("+", "-"):
                sign = -1 if self.next().kind == "-" else 1
            draft = _Draft(index=len(drafts) + 1, col=self.peek().col, mantissa=sign)
            self.factor(draft)
            while self.peek().kind == "*":
                self.next()
                self.factor(draft)
            drafts.append(draft)
            tok = self.peek()
            if tok.kind == "end":
                return drafts
            if tok.kind == ")":
                self.fail(f"unmatched ')' at column {tok.col}")
            if tok.kind not in ("+", "-"):
                self.fail(f"expected '*', '+' or '-' at column {tok.col}, found {tok.text!r}")

    def factor(self, d: _Draft) -> None:
        tok = self.next()
        if tok.kind == "lit":
            m, e = tok.value
            d.mantissa *= m
            d.exponent += e
        elif tok.kind == "dep":
            if d.dependency is None:
                d.dependency, d.dep_col = tok.value, tok.col
            else:  # a further x0/y0 is a width-1 factor (Lava does the same)
                d.factors.append(Factor(tok.value))
                d.factor_cols.append((tok.col, None))
        elif tok.kind == "u":
            if d.dependency is not None:
                # Lava rejects x0*u1 (decimate without a u dependency) but silently drops the
                # second u_k of u0*u0: we refuse both.
                self.fail(
                    f"{tok.text} at column {tok.col}: u_k must be the product's dependency (its first x0, y0 "
                    f"or u_k), but product {d.index} already depends on {self._dep_name(d)} "
                    f"(column {d.dep_col})"
                )
            d.dependency, d.decimate, d.dep_col = "u", tok.value, tok.col
        elif tok.kind == "var":
            d.factors.append(Factor(tok.value))
            d.factor_cols.append((tok.col, None))
        elif tok.kind in ("(", "sgn"):
            self.bracket(d, tok)
        elif tok.kind in ("+", "-"):
            self.fail(
                f"unexpected {tok.text!r} at column {tok.col}: a sign can only start a product or a bracket "
                "(negate the whole product instead)"
            )
        elif tok.kind == "end":
            prev = self.tokens[self.pos - 2]
            self.fail(f"the rule ends after {prev.text!r} at column {prev.col}; expected a factor")
        else:
            self.fail(f"expected a factor at column {tok.col}, found {tok.text!r}")

    @staticmethod
    def _dep_name(d: _Draft) -> str:
        return f"u{d.decimate}" if d.dependency == "u" else str(d.dependency)

    def bracket(self, d: _Draft, open_tok: _Token) -> None:
        """``( [+-] a [(+|-) b] )`` with a, b a literal or a variable; ``sgn(`` likewise."""
        sgn = open_tok.kind == "sgn"
        name = "sgn(...)" if sgn else "(...)"
        terms: list[tuple[int, _Token]] = []
        while True:
            tok = self.next()
            sign = 1
            if tok.kind in ("+", "-"):
                sign = -1 if tok.kind == "-" else 1
                tok = self.next()
            if tok.kind == "end":
                self.fail(f"{open_tok.text!r} at column {open_tok.col} is never closed")
            if tok.kind in ("(", "sgn"):
                self.fail(f"nested bracket at column {tok.col}: Lava drops it silently; a bracket holds var ± const")
            if tok.kind == "u":
                self.fail(f"{tok.text} at column {tok.col} cannot be inside a bracket; u_k is a dependency")
            if tok.kind not in ("lit", "dep", "var"):
                self.fail(f"expected a variable or a literal at column {tok.col} in {name}, found {tok.text!r}")
            terms.append((sign, tok))
            nxt = self.peek()
            if nxt.kind == ")":
                self.next()
                break
            if nxt.kind == "end":
                self.fail(f"{open_tok.text!r} at column {open_tok.col} is never closed")
            if nxt.kind not in ("+", "-") or len(terms) == 2:
                # Lava reads (w*3) as (w+3) and ignores anything after the second term.
                self.fail(
                    f"{name} at column {open_tok.col} must be 'var ± const', 'const ± var' or a lone literal "
                    f"or variable; found {nxt.text!r} at column {nxt.col}"
                )
        if len(terms) == 1:
            self._bracket_one(d, open_tok, sgn, *terms[0])
        else:
            self._bracket_two(d, open_tok, sgn, terms)

    def _bracket_one(self, d: _Draft, open_tok: _Token, sgn: bool, sign: int, tok: _Token) -> None:
        if tok.kind == "lit" and not sgn:  # (c) is part of the scale
            m, e = tok.value
            d.mantissa *= sign * m
            d.exponent += e
            return
        self._check_sgn_var(sgn, tok)
        if tok.kind == "dep":
            self.fail(f"'({tok.text})' at column {open_tok.col}: Lava drops a bracketed dependency; write {tok.text}")
        if sign < 0:
            self.fail(
                f"'{open_tok.text}-{tok.text})' at column {open_tok.col}: Lava ignores the sign of a lone variable "
                f"in brackets; negate the product instead"
            )
        d.factors.append(Factor(tok.value, 0, sgn))
        d.factor_cols.append((open_tok.col, None))

    def _bracket_two(self, d: _Draft, open_tok: _Token, sgn: bool, terms: list[tuple[int, _Token]]) -> None:
        kinds = [t.kind == "lit" for _, t in terms]
        if kinds.count(True) != 1:
            what = "two constants" if all(kinds) else "two variables"
            self.fail(f"bracket at column {open_tok.col} holds {what}; it must be 'var ± const' or 'const ± var'")
        (var_sign, var_tok), (const_sign, lit) = terms if not kinds[0] else terms[::-1]
        self._check_sgn_var(sgn, var_tok)
        m, e = lit.value
        if e > 64:  # also keeps a typo such as 2^99999999 from building a huge integer
            self.fail(f"constant {lit.text!r} at column {lit.col} is far too large for a bracket constant")
        if e < 0 and m % (1 << -e):
            self.fail(f"constant {lit.text!r} at column {lit.col} is {m / 2**-e:g}, not an integer")
        const = const_sign * (m << e if e >= 0 else m >> -e)
        if var_sign < 0:
            if sgn:
                self.fail(f"the variable in sgn(...) at column {open_tok.col} cannot be negated (Lava rejects it)")
            # (-w + c) = -(w - c): Lava negates the scale and the constant (product_series.py).
            d.mantissa = -d.mantissa
            const = -const
        d.factors.append(Factor(var_tok.value, const, sgn))
        d.factor_cols.append((open_tok.col, lit.col))

    def _check_sgn_var(self, sgn: bool, tok: _Token) -> None:
        if sgn and tok.value not in SYNAPTIC_VARIABLES:
            what = "a literal" if tok.kind == "lit" else repr(tok.text)
            self.fail(f"sgn(...) at column {tok.col} applies only to w, d or t, not to {what}")


# -- parse ----------------------------------------------------------------------------------


def parse(text: str, target: str = "dw", engine=None) -> Expr:
    """Read a rule string in Lava's syntax (lava-nc 0.10.0) into an :class:`Expr`.

    Each product gets Lava's meaning: its first ``x0``/``y0``/``u_k`` is the dependency,
    further ``x0``/``y0`` are width-1 factors, all literals (also a bracketed lone literal)
    multiply into one scale ``m*2^e``, normalised as Lava does (halve ``m`` while it is even,
    ``|m| > 7`` and ``e < 8``), ``(-v + c)`` becomes ``-(v - c)``. Where Lava's parser
    silently reads something else than what is written, this one refuses: ``(w*3)`` (Lava:
    ``(w+3)``), ``(-w)`` and ``sgn(-w)`` (Lava drops the sign), ``(x0)`` and nested brackets
    (dropped), juxtaposed factors such as ``x12`` (Lava: ``x1*2``), a trailing or doubled
    ``*``, and a ``u_k`` that is not the product's dependency. So every string accepted here
    means the same to Lava, except that any whitespace is allowed where Lava only strips
    spaces (:func:`format_expr` writes spaces only).

    ``engine`` is a profile's ``LearningEngine`` (or the ``Profile`` itself, whose name then
    appears in messages); with it, the scale, the variables, the factor count and the
    bracket constants are checked against the engine and every such problem is reported at
    once. Without it only the syntax is checked. ``target`` (``dw``/``dt``/``dd``) only names
    the rule in messages. Raises :class:`RuleSyntaxError`.
    """
    where = f"rule {target}"
    who = getattr(engine, "name", None)
    engine = getattr(engine, "learning", engine)
    if engine is not None and engine.kind != "sum_of_products":
        raise RuleSyntaxError(
            [Problem(where, f"{text!r}: the {engine.kind} learning engine does not take rule strings")]
        )
    drafts = _Parser(text, target).rule()

    problems: list[str] = []
    for d in drafts:
        if d.dependency is None:
            problems.append(f"product {d.index} (column {d.col}) has no dependency; every product needs x0, y0 or u_k")
        # Lava's normalisation of a rule string (product_series.py: |m| > 7, e < 8), part of its
        # syntax whatever the engine; the engine's own scale bounds are checked below
        while abs(d.mantissa) > 7 and d.mantissa % 2 == 0 and d.exponent < 8:
            d.mantissa //= 2  # exact: m is even
            d.exponent += 1
    ks = {d.decimate: d.dep_col for d in reversed(drafts) if d.decimate is not None}  # k -> its first column
    if len(ks) > 1:
        found = ", ".join(f"u{k} at column {c}" for k, c in sorted(ks.items(), key=lambda kc: kc[1]))
        problems.append(f"all u_k of one rule must have the same k; found {found}")
    if engine is not None:
        problems += _engine_problems(drafts, engine, who or "the engine")
    if problems:
        raise RuleSyntaxError([Problem(where, f"{text!r}: {p}") for p in problems])
    return Expr(tuple(Product(str(d.dependency), d.mantissa, d.exponent, tuple(d.factors), d.decimate) for d in drafts))


def _engine_problems(drafts: list[_Draft], engine, who: str) -> list[str]:
    """Everything in the (normalised) products that ``engine`` cannot represent."""
    out: list[str] = []
    mlo, mhi, elo, ehi = engine.mantissa_min, engine.mantissa_max, engine.exponent_min, engine.exponent_max
    max_factors = int(engine.params["max_factors_per_product"])  # (a sum_of_products profile must give both)
    bits = int(engine.params["constant_bits"])
    clo, chi = -(2**bits), 2**bits - 1
    deps = set(engine.dependencies)
    available = ", ".join(tuple(v for v in ("x0", "y0") if v in deps) + tuple(engine.variables))
    for d in drafts:
        scale = f"(after normalisation {d.mantissa}*2^{d.exponent}); {who} cannot represent it"
        if not mlo <= d.mantissa <= mhi:
            out.append(f"mantissa {d.mantissa} of product {d.index} is outside [{mlo}, {mhi}] {scale}")
        if not elo <= d.exponent <= ehi:
            out.append(f"exponent {d.exponent} of product {d.index} is outside [{elo}, {ehi}] {scale}")
        if d.dependency is not None and d.dependency not in deps:
            name = f"u{d.decimate}" if d.dependency == "u" else d.dependency
            out.append(
                f"dependency {name} at column {d.dep_col} is not available on {who} "
                f"(available: {', '.join(sorted(deps))})"
            )
        if len(d.factors) > max_factors:
            listed = ", ".join(_format_factor(f) for f in d.factors)
            out.append(
                f"product {d.index} has {len(d.factors)} factors; the engine allows at most {max_factors} ({listed})"
            )
        for f, (col, const_col) in zip(d.factors, d.factor_cols, strict=True):
            ok = f.var in deps if f.var in ("x0", "y0") else f.var in engine.variables
            if not ok:
                out.append(f"variable {f.var!r} at column {col} is not available on {who} (available: {available})")
            if not clo <= f.const <= chi:
                out.append(
                    f"constant {f.const} at column {const_col or col} is outside [{clo}, {chi}] "
                    f"({bits}-bit constant); {who} cannot represent it"
                )
    return out


# -- print ----------------------------------------------------------------------------------


def format_expr(expr: Expr) -> str:
    """Write ``expr`` in Lava's syntax, canonically: per product the scale (``m*2^e``,
    ``2^e``, ``m`` or nothing for 1), the dependency, then the factors, joined by ``*``;
    a negative mantissa becomes the product's sign (``2^-2*y0*x1 - 2^-2*x0*y1``).

    ``parse(format_expr(e)) == e`` for every ``e`` that :func:`parse` can return (its scales
    are normalised: a product such as ``-8*2^0`` reads back as ``-4*2^1``), and Lava reads
    the string to the same products.
    """
    out = []
    for i, p in enumerate(expr.products):
        body = _format_product(p, abs(p.mantissa))
        if i == 0:
            out.append(f"-{body}" if p.mantissa < 0 else body)
        else:
            out.append(f" - {body}" if p.mantissa < 0 else f" + {body}")
    return "".join(out)


def _format_product(p: Product, m: int) -> str:
    if p.dependency not in DEPENDENCIES or (p.dependency == "u") != (p.decimate is not None):
        raise ValueError(f"invalid product: dependency {p.dependency!r} with decimate {p.decimate!r}")
    if p.exponent == 0:
        scale = [] if m == 1 else [str(m)]
    else:
        scale = [f"2^{p.exponent}" if m == 1 else f"{m}*2^{p.exponent}"]
    dep = f"u{p.decimate}" if p.dependency == "u" else p.dependency
    return "*".join([*scale, dep, *(_format_factor(f) for f in p.factors)])


def _format_factor(f: Factor) -> str:
    inner = f.var if f.const == 0 else f"{f.var} {'+' if f.const > 0 else '-'} {abs(f.const)}"
    if f.sgn:
        return f"sgn({inner})"
    return f"({inner})" if f.const else inner
