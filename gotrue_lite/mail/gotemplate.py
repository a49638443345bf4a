"""Translates the Go html/template subset used by Supabase mail templates into Jinja source."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

# The name the rendered context carries the whole variable map under: Go's `$` and, outside
# range/with, Go's dot. Subscripting it (not bare names) keeps any key usable, e.g. `.items`.
ROOT = "_go_root"


class GoTemplateError(ValueError):
    """The text uses Go template syntax this translator does not handle."""


# Functions of Go's text/template that map onto Jinja operators without changing meaning.
_COMPARE = {"ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_REFUSED_FUNCS = {
    "html": "the html function (output is escaped already)",
    "js": "the js function", "urlquery": "the urlquery function", "print": "print",
    "printf": "printf", "println": "println", "call": "call", "slice": "slice",
}
_SPACE = " \t\r\n"

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<root>\$(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?![A-Za-z0-9_])
  | (?P<var>\$[A-Za-z_][A-Za-z0-9_]*)
  | (?P<dot>\.)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)*')
  | (?P<number>[+-]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>:=|[()|=,])
    """,
    re.VERBOSE,
)


@dataclass
class _Tok:
    kind: str
    text: str


@dataclass
class _Frame:
    opener: str  # "if", "range" or "with"
    dot: str  # the Jinja expression Go's dot stands for inside this block
    has_else: bool = False


def go_to_jinja(source: str) -> str:
    """Jinja source that renders `source` (Go template text) the same, or GoTemplateError."""
    return _Translator(source).run()


class _Translator:
    def __init__(self, source: str) -> None:
        self.src = source
        self.out: list[str] = []
        self.frames: list[_Frame] = []
        self.loops = 0

    # -- scanning ---------------------------------------------------------------------------

    def run(self) -> str:
        pos = 0
        while True:
            start = self.src.find("{{", pos)
            if start < 0:
                self._text(self.src[pos:])
                break
            self._text(self.src[pos:start])
            pos = self._action(start)
        if self.frames:
            raise GoTemplateError(f"{{{{ {self.frames[-1].opener} }}}} without {{{{ end }}}}")
        return "".join(self.out)

    def _text(self, text: str) -> None:
        # Go passes these through as text; Jinja would read them as the start of a tag.
        self.out.append(text.replace("{%", '{{ "{%" }}').replace("{#", '{{ "{#" }}'))

    def _action(self, start: int) -> int:
        pos = start + 2
        trim_left = self.src.startswith("-", pos) and self.src[pos + 1:pos + 2] in tuple(_SPACE)
        if trim_left:
            pos += 2
        if self.src.startswith("/*", pos):
            end = self.src.find("*/", pos + 2)
            if end < 0:
                raise GoTemplateError("unclosed comment")
            rest = end + 2
            trim_right = False
            if self.src.startswith(" -}}", rest):
                trim_right, rest = True, rest + 2
            if not self.src.startswith("}}", rest):
                raise GoTemplateError("comment ends before }}")
            # A Jinja comment keeps the whitespace-trimming of the Go one.
            body = self.src[pos + 2:end].replace("#}", "# }")
            self.out.append(("{#-" if trim_left else "{#") + body + ("-#}" if trim_right else "#}"))
            return rest + 2
        tokens, pos, trim_right = self._tokens(pos)
        self._statement(tokens, trim_left, trim_right)
        return pos

    def _tokens(self, pos: int) -> tuple[list[_Tok], int, bool]:
        tokens: list[_Tok] = []
        while True:
            if self.src.startswith("}}", pos):
                return tokens, pos + 2, False
            if pos >= len(self.src):
                raise GoTemplateError("unclosed action (no }})")
            match = _TOKEN.match(self.src, pos)
            if match is None:
                raise GoTemplateError(f"unexpected {self.src[pos:pos + 10]!r} in action")
            kind = match.lastgroup
            if kind == "space":
                # " -}}" trims what follows; a bare "-" elsewhere is not Go syntax.
                after = match.end()
                if self.src.startswith("-}}", after):
                    return tokens, after + 3, True
            else:
                tokens.append(_Tok(kind, match.group()))
            pos = match.end()

    # -- statements -------------------------------------------------------------------------

    def _statement(self, tokens: list[_Tok], trim_left: bool, trim_right: bool) -> None:
        def tag(body: str) -> None:
            self.out.append(("{%- " if trim_left else "{% ") + body + (" -%}" if trim_right else " %}"))

        if not tokens:
            raise GoTemplateError("empty action {{ }}")
        head = tokens[0]
        keyword = head.text if head.kind == "ident" else ""
        if keyword == "if":
            tag(f"if {self._pipeline(tokens[1:])}")
            self.frames.append(_Frame("if", self._dot))
        elif keyword == "else":
            frame = self._frame("else")
            if frame.has_else:
                raise GoTemplateError("{{ else }} after {{ else }}")
            if len(tokens) > 1:
                if tokens[1].text != "if" or frame.opener != "if":
                    raise GoTemplateError(f"{{{{ else {tokens[1].text} }}}} is not supported")
                tag(f"elif {self._pipeline(tokens[2:])}")
            else:
                frame.has_else = True
                tag("else")
        elif keyword == "end":
            if len(tokens) > 1:
                raise GoTemplateError("unexpected words after {{ end }}")
            frame = self._frame("end")
            self.frames.pop()
            tag("endif" if frame.opener == "if" else "endfor")
        elif keyword in ("range", "with"):
            expression = self._pipeline(tokens[1:])
            self.loops += 1
            name = f"_go_dot{self.loops}"
            if keyword == "range":
                tag(f"for {name} in ({expression})|go_range")
            else:
                # A one-element loop that skips an empty value: Go's with, else included.
                tag(f"for {name} in [{expression}] if {name}")
            self.frames.append(_Frame(keyword, name))
        elif keyword in ("define", "template", "block", "break", "continue"):
            raise GoTemplateError(f"{{{{ {keyword} }}}} is not supported")
        else:
            self.out.append(("{{- " if trim_left else "{{ ") + self._pipeline(tokens)
                            + (" -}}" if trim_right else " }}"))

    @property
    def _dot(self) -> str:
        return self.frames[-1].dot if self.frames else ROOT

    def _frame(self, word: str) -> _Frame:
        if not self.frames:
            raise GoTemplateError(f"{{{{ {word} }}}} without an opening if/range/with")
        return self.frames[-1]

    # -- expressions ------------------------------------------------------------------------

    def _pipeline(self, tokens: list[_Tok]) -> str:
        if not tokens:
            raise GoTemplateError("missing value in action")
        for token in tokens:
            if token.kind == "punct" and token.text == "|":
                raise GoTemplateError("pipelines (|) are not supported")
            if token.kind == "punct" and token.text in (":=", "=", ","):
                raise GoTemplateError("template variables are not supported")
        expression, rest = self._command(tokens)
        if rest:
            raise GoTemplateError(f"unexpected {rest[0].text!r}")
        return expression

    def _command(self, tokens: list[_Tok]) -> tuple[str, list[_Tok]]:
        """One command: a function applied to operands, or a single operand."""
        head = tokens[0]
        if head.kind == "ident" and head.text not in ("true", "false", "nil"):
            args: list[str] = []
            rest = tokens[1:]
            while rest and not (rest[0].kind == "punct" and rest[0].text == ")"):
                value, rest = self._operand(rest)
                args.append(value)
            return self._call(head.text, args), rest
        value, rest = self._operand(tokens)
        if rest and not (rest[0].kind == "punct" and rest[0].text == ")"):
            raise GoTemplateError(f"unexpected {rest[0].text!r} after a value (methods with arguments?)")
        return value, rest

    def _operand(self, tokens: list[_Tok]) -> tuple[str, list[_Tok]]:
        token, rest = tokens[0], tokens[1:]
        kind, text = token.kind, token.text
        if kind == "field":
            return self._path(self._dot, text), rest
        if kind == "dot":
            return self._dot, rest
        if kind == "root":
            return self._path(ROOT, text[1:]), rest
        if kind == "string":
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise GoTemplateError(f"bad string literal {text}") from None
            return json.dumps(value, ensure_ascii=False), rest
        if kind == "raw":
            return json.dumps(text[1:-1], ensure_ascii=False), rest
        if kind == "number":
            number = text.replace("_", "")
            try:
                value = float(number) if any(c in number for c in ".eE") else int(number)
            except ValueError:
                raise GoTemplateError(f"bad number {text}") from None
            return repr(value), rest
        if kind == "ident" and text in ("true", "false", "nil"):
            return {"true": "true", "false": "false", "nil": "none"}[text], rest
        if kind == "punct" and text == "(":
            if not rest:
                raise GoTemplateError("unclosed (")
            inner, rest = self._command(rest)
            if not rest or rest[0].text != ")":
                raise GoTemplateError("unclosed (")
            rest = rest[1:]
            if rest and rest[0].kind == "field":
                raise GoTemplateError("fields of a parenthesised value are not supported")
            return f"({inner})", rest
        if kind == "var":
            raise GoTemplateError(f"template variables ({text}) are not supported")
        if kind == "char":
            raise GoTemplateError("character constants are not supported")
        if kind == "ident":
            raise GoTemplateError(f"function {text} used as a value")
        raise GoTemplateError(f"unexpected {text!r}")

    @staticmethod
    def _path(base: str, fields: str) -> str:
        names = [name for name in fields.split(".") if name]
        return base + "".join(f"[{json.dumps(name, ensure_ascii=False)}]" for name in names)

    @staticmethod
    def _call(name: str, args: list[str]) -> str:
        if name in _REFUSED_FUNCS:
            raise GoTemplateError(f"{_REFUSED_FUNCS[name]} is not supported")

        def arity(low: int, high: int | None = None) -> None:
            if len(args) < low or (high is not None and len(args) > high):
                raise GoTemplateError(f"wrong number of arguments for {name}")

        if name == "not":
            arity(1, 1)
            return f"(not {args[0]})"
        if name in ("and", "or"):
            arity(1)
            return "(" + f" {name} ".join(args) + ")"
        if name == "eq":
            arity(2)
            # Go's eq with several arguments is true when the first equals any of the others.
            return "(" + " or ".join(f"{args[0]} == {other}" for other in args[1:]) + ")"
        if name in _COMPARE:
            arity(2, 2)
            return f"({args[0]} {_COMPARE[name]} {args[1]})"
        if name == "len":
            arity(1, 1)
            return f"({args[0]}|length)"
        if name == "index":
            arity(1)
            return args[0] + "".join(f"[{key}]" for key in args[1:])
        raise GoTemplateError(f"function {name} is not supported")
