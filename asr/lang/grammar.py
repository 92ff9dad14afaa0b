"""Grammars: the kinds of word-level acceptor G that ``asr compile-graph`` can build.

One registry, :data:`GRAMMARS`, maps a kind's name to its builder and its
typed config (in the style of lhotse's feature-extractor registry).  The
CLI's ``--grammar`` choices and options come from it: each config field with
:func:`cli_option` metadata is an option of ``asr compile-graph``.  Kinds:

- ``ngram``: an n-gram LM, read from an ARPA file or estimated from Kaldi text
  files with one of :data:`asr.lang.lm.LM_ESTIMATORS` (``#0`` on back-off arcs).
- ``one-of``: exactly one word of a list (one word per line).
- ``word-loop``: any sequence of one or more words of a list.
- ``jsgf``: a JSGF subset (see :func:`parse_jsgf`).

Every kind gives the same kind of G as the ARPA path: a k2 FSA whose labels and
aux_labels are the word ids of the lang's ``words.txt``, with natural-log
scores.  The list and JSGF kinds give a deterministic, minimal, epsilon-free
G, so it needs no ``#0``.  Its scores are uniform at each state: a state with k
outgoing words, final or not (f = 1 or 0), gives each word and stopping the
score ``ln(1 / (k + f))``, so the probabilities of all sentences sum to 1 (a
one-of list of n words gives each word ``ln(1/n)``).

This module imports neither torch nor k2 at import time, so that building
the CLI parser stays fast.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

from asr.errors import LanguageModelError
from asr.fileio import PathLike, atomic_write_text, read_lines
from asr.lang import lm as lmlib

if TYPE_CHECKING:
    import k2

    from asr.lang.lang_dir import LangDir

log = logging.getLogger("asr.lang.grammar")

EPSILON = 0


class GrammarError(LanguageModelError):
    """A word list or grammar file is malformed, or its options are inconsistent."""


# ---------------------------------------------------------------------------
# The registry


@dataclass
class CompiledGrammar:
    """What a grammar kind gives :func:`asr.lang.graph.compile_graph_dir`.

    Attributes:
      G: The word acceptor (labels = aux_labels = word ids, scores = ln p).
      info: Entries of ``graph.yaml`` that describe where G came from.
      files: Further text outputs of the graph dir, name -> content
        (the ngram kind's ``lm.arpa``).
    """

    G: "k2.Fsa"
    info: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


GrammarBuilder = Callable[["LangDir", Any], CompiledGrammar]


@dataclass(frozen=True)
class GrammarKind:
    """An entry of :data:`GRAMMARS`: a name, a one-line summary, a config type, a builder."""

    name: str
    summary: str
    config_type: type
    build: GrammarBuilder


#: Grammar kinds by name; ``asr compile-graph --grammar`` offers these.
GRAMMARS: dict[str, GrammarKind] = {}
#: The kind that ``asr compile-graph`` builds without ``--grammar``.
DEFAULT_GRAMMAR = "ngram"


def register_grammar(name: str, summary: str, config_type: type) -> Callable[[GrammarBuilder], GrammarBuilder]:
    """Decorator that registers ``builder(lang, config) -> CompiledGrammar`` as kind ``name``."""

    def register(builder: GrammarBuilder) -> GrammarBuilder:
        GRAMMARS[name] = GrammarKind(name, summary, config_type, builder)
        return builder

    return register


def compile_grammar(lang: "LangDir", kind: str, config: Any) -> CompiledGrammar:
    """Builds G of grammar ``kind`` for ``lang``.

    Raises:
      GrammarError: on an unknown kind or a config of another kind's type.
    """
    if kind not in GRAMMARS:
        raise GrammarError(f"unknown grammar kind '{kind}' (use one of {', '.join(GRAMMARS)})")
    entry = GRAMMARS[kind]
    if not isinstance(config, entry.config_type):
        raise GrammarError(f"grammar '{kind}' needs a {entry.config_type.__name__}, got {type(config).__name__}")
    return entry.build(lang, config)


# ---------------------------------------------------------------------------
# Configs and their CLI options


@dataclass(frozen=True)
class CliOption:
    """How a config field appears on the command line."""

    flag: str
    help: str
    argparse_kwargs: dict[str, Any]


def cli_option(flag: str, help: str, **argparse_kwargs: Any) -> dict[str, CliOption]:
    """Field metadata that makes a config field the ``asr compile-graph`` option ``flag``."""
    return {"cli": CliOption(flag, help, argparse_kwargs)}


@dataclass(frozen=True)
class NgramConfig:
    """The ``ngram`` kind: exactly one of ``arpa`` and ``text``."""

    arpa: PathLike | None = field(default=None, metadata=cli_option("--arpa", "use this ARPA LM", metavar="FILE"))
    text: list[PathLike] | None = field(default=None, metadata=cli_option(
        "--text", "estimate the LM from these Kaldi text files", nargs="+", metavar="FILE"))
    order: int = field(default=2, metadata=cli_option("--order", "n-gram order when estimating", type=int))
    method: str = field(default="kneser-ney", metadata=cli_option(
        "--method", "smoothing when estimating", choices=tuple(lmlib.LM_ESTIMATORS)))
    #: Drop a given ARPA's ``<s> </s>`` bigram, which would favour empty output.
    drop_bos_eos_bigram: bool = True

    def __post_init__(self) -> None:
        if self.arpa is None and not self.text:
            raise GrammarError("compile-graph needs an ARPA file (--arpa) or training text (--text)")
        if self.arpa is not None and self.text:
            raise GrammarError("give an ARPA file (--arpa) or training text (--text), not both")


@dataclass(frozen=True)
class WordListConfig:
    """The ``one-of`` and ``word-loop`` kinds: a file with one word per line."""

    words: PathLike = field(metadata=cli_option("--words", "word list, one word per line", metavar="FILE"))


@dataclass(frozen=True)
class JsgfConfig:
    """The ``jsgf`` kind: a grammar file and the rule to recognize."""

    jsgf: PathLike = field(metadata=cli_option("--jsgf", "grammar file in the JSGF subset", metavar="FILE"))
    rule: str | None = field(default=None, metadata=cli_option(
        "--rule", "rule to recognize (default: the first public rule)", metavar="NAME"))


def _cli_fields(config_type: type) -> list[tuple[dataclasses.Field, CliOption]]:
    return [(f, f.metadata["cli"]) for f in dataclasses.fields(config_type) if "cli" in f.metadata]


@dataclass
class CliEntry:
    """One ``asr compile-graph`` option: the config field it sets and the kinds that have it."""

    option: CliOption
    field_name: str
    default: Any
    kinds: list[str]


def cli_options() -> list[CliEntry]:
    """Every CLI option of every registered kind, once, in registration order."""
    entries: dict[str, CliEntry] = {}
    for kind in GRAMMARS.values():
        for f, opt in _cli_fields(kind.config_type):
            if opt.flag in entries:
                entries[opt.flag].kinds.append(kind.name)
            else:
                default = None if f.default is dataclasses.MISSING else f.default
                entries[opt.flag] = CliEntry(opt, f.name, default, [kind.name])
    return list(entries.values())


def config_from_options(kind: str, given: dict[str, Any]) -> Any:
    """Builds the config of ``kind`` from the CLI options that were given.

    Args:
      kind: A key of :data:`GRAMMARS`.
      given: Field name -> value, for the options given on the command line.

    Raises:
      GrammarError: if an option belongs to other kinds only, a required one
        is missing, or the combination is invalid.
    """
    entry = GRAMMARS[kind]
    own = {f.name: opt.flag for f, opt in _cli_fields(entry.config_type)}
    others = {e.field_name: e for e in cli_options()}
    for name in given:
        if name not in own:
            flag, kinds = others[name].option.flag, " or ".join(others[name].kinds)
            raise GrammarError(f"{flag} is an option of --grammar {kinds}, not of --grammar {kind}")
    for f in dataclasses.fields(entry.config_type):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in given:
            raise GrammarError(f"--grammar {kind} needs {own[f.name]}")
    return entry.config_type(**given)


# ---------------------------------------------------------------------------
# Grammar expressions (what word lists and JSGF rules parse into)


@dataclass(frozen=True)
class Word:
    """One word, with the line of the file it came from."""

    text: str
    line: int


@dataclass(frozen=True)
class RuleRef:
    """A ``<rule>`` reference."""

    name: str
    line: int


@dataclass(frozen=True)
class Concat:
    """A sequence: each item in turn."""

    items: tuple["Expr", ...]


@dataclass(frozen=True)
class Choice:
    """Alternatives: exactly one of the options."""

    options: tuple["Expr", ...]


@dataclass(frozen=True)
class Repeat:
    """``item`` from ``at_least`` (0 or 1) to ``at_most`` (1, or None: unbounded) times.

    ``[x]`` is Repeat(x, 0, 1), ``x*`` is Repeat(x, 0, None), ``x+`` is Repeat(x, 1, None).
    """

    item: "Expr"
    at_least: int
    at_most: int | None


Expr = Union[Word, RuleRef, Concat, Choice, Repeat]


def _children(expr: Expr) -> tuple[Expr, ...]:
    if isinstance(expr, Concat):
        return expr.items
    if isinstance(expr, Choice):
        return expr.options
    if isinstance(expr, Repeat):
        return (expr.item,)
    return ()


def _leaves(expr: Expr) -> list[Word | RuleRef]:
    """Words and rule references of ``expr``, in order."""
    if isinstance(expr, (Word, RuleRef)):
        return [expr]
    return [leaf for child in _children(expr) for leaf in _leaves(child)]


# ---------------------------------------------------------------------------
# Word lists


def read_word_list(path: PathLike) -> list[Word]:
    """Reads a word list: one word per line; blank lines are skipped, repeats dropped.

    Raises:
      GrammarError: naming ``file:line`` for a line with several words, or
        the file if it is missing or has no words.
    """
    words: list[Word] = []
    seen: set[str] = set()
    for i, line in enumerate(read_lines(path, GrammarError), 1):
        tokens = line.split()
        if len(tokens) > 1:
            raise GrammarError(f"{path}:{i}: expected one word per line, got {len(tokens)} (use --grammar jsgf for phrases)")
        if tokens and tokens[0] in seen:
            log.warning("%s:%d: word '%s' is listed twice", path, i, tokens[0])
        elif tokens:
            seen.add(tokens[0])
            words.append(Word(tokens[0], i))
    if not words:
        raise GrammarError(f"{path}: the word list is empty")
    return words


# ---------------------------------------------------------------------------
# JSGF subset

_TOKEN_RE = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<comment>//[^\n]*|/\*.*?\*/)"
    r"|(?P<rule><[^<>\s;|()\[\]*+=]+>)"
    r"|(?P<punct>[|()\[\]*+=;])"
    r"|(?P<word>[^\s<>;|()\[\]*+={}/\"]+)",
    re.DOTALL,
)
_UNSUPPORTED = "this JSGF subset has no weights, tags, quoted tokens or imports"


@dataclass(frozen=True)
class Token:
    """A JSGF token: ``kind`` is ``rule``, ``punct`` or ``word``."""

    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class Rule:
    """A rule definition ``[public] <name> = body;``."""

    name: str
    public: bool
    body: Expr
    line: int


def tokenize_jsgf(text: str, path: PathLike) -> list[Token]:
    """Splits JSGF text into tokens, dropping white space and ``//``, ``/* */`` comments.

    Raises:
      GrammarError: at ``file:line`` of a character outside the subset.
    """
    tokens: list[Token] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None and text.startswith("/*", pos):
            raise GrammarError(f"{path}:{line}: '/*' comment is not closed by '*/'")
        if m is None:
            raise GrammarError(f"{path}:{line}: unsupported JSGF syntax at '{text[pos:pos + 10].split()[0]}' ({_UNSUPPORTED})")
        if m.lastgroup not in ("space", "comment"):
            tokens.append(Token(m.lastgroup, m.group(), line))
        line += m.group().count("\n")
        pos = m.end()
    return tokens


class _JsgfParser:
    """Recursive-descent parser of the JSGF subset (one instance per file).

    Grammar (``[x]`` optional, ``x*`` repeated)::

        file        := header* rule*
        header      := '#JSGF' ... ';' | 'grammar' NAME ';'
        rule        := ['public'] RULE '=' choice ';'
        choice      := sequence ('|' sequence)*
        sequence    := item item*
        item        := atom ('*' | '+')*
        atom        := WORD | RULE | '(' choice ')' | '[' choice ']'
    """

    _CLOSERS = {"(": ")", "[": "]"}

    def __init__(self, tokens: list[Token], path: PathLike):
        self.tokens = tokens
        self.pos = 0
        self.path = path

    def error(self, line: int, message: str) -> GrammarError:
        return GrammarError(f"{self.path}:{line}: {message}")

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def last_line(self) -> int:
        return self.tokens[-1].line if self.tokens else 1

    def rules(self) -> list[Rule]:
        """All rule definitions, in file order (headers skipped)."""
        rules = []
        while self.peek() is not None:
            first = self.peek()
            if first.kind == "word" and (first.text.startswith("#JSGF") or first.text == "grammar"):
                self.skip_statement()
            elif first.kind == "word" and first.text == "import":
                raise self.error(first.line, f"'import' is not supported ({_UNSUPPORTED})")
            else:
                rules.append(self.rule())
        return rules

    def skip_statement(self) -> None:
        start = self.take()
        while (token := self.peek()) is not None and token.text != ";":
            self.take()
        if token is None:
            raise self.error(start.line, f"'{start.text}' line has no closing ';'")
        self.take()

    def rule(self) -> Rule:
        first = self.take()
        public = first.kind == "word" and first.text == "public"
        name = self.take() if public and self.peek() is not None else first
        if name.kind != "rule":
            raise self.error(name.line, f"expected a rule definition '<name> = ...;', got '{name.text}'")
        equals = self.peek()
        if equals is None or equals.text != "=":
            raise self.error(name.line, f"expected '=' after {name.text}")
        self.take()
        body = self.choice()
        end = self.peek()
        if end is None:
            raise self.error(name.line, f"rule {name.text} has no closing ';'")
        if end.text != ";":
            hint = f" (no '(' or '[' to close)" if end.text in (")", "]") else ""
            raise self.error(end.line, f"unexpected '{end.text}' in rule {name.text}{hint}; expected ';'")
        self.take()
        return Rule(name.text[1:-1], public, body, name.line)

    def choice(self) -> Expr:
        options = [self.sequence()]
        while (token := self.peek()) is not None and token.text == "|":
            self.take()
            options.append(self.sequence())
        return options[0] if len(options) == 1 else Choice(tuple(options))

    def sequence(self) -> Expr:
        items = []
        while (token := self.peek()) is not None and (token.kind in ("word", "rule") or token.text in self._CLOSERS):
            items.append(self.item())
        if not items:
            line, text = (token.line, f"'{token.text}'") if token is not None else (self.last_line(), "end of file")
            raise self.error(line, f"expected a word, <rule>, '(' or '[', got {text}")
        return items[0] if len(items) == 1 else Concat(tuple(items))

    def item(self) -> Expr:
        expr = self.atom()
        while (token := self.peek()) is not None and token.text in ("*", "+"):
            self.take()
            expr = Repeat(expr, 0 if token.text == "*" else 1, None)
        return expr

    def atom(self) -> Expr:
        token = self.take()
        if token.kind == "word":
            return Word(token.text, token.line)
        if token.kind == "rule":
            return RuleRef(token.text[1:-1], token.line)
        inner = self.choice()
        closer = self.peek()
        want = self._CLOSERS[token.text]
        if closer is None or closer.text == ";":
            raise self.error(token.line, f"'{token.text}' is not closed by '{want}'")
        if closer.text != want:
            raise self.error(closer.line, f"expected '{want}' to close the '{token.text}' of line {token.line}, got '{closer.text}'")
        self.take()
        return inner if token.text == "(" else Repeat(inner, 0, 1)


def parse_jsgf(path: PathLike) -> dict[str, Rule]:
    """Reads a grammar file in a JSGF subset; returns its rules by name.

    The subset: an optional ``#JSGF ...;`` header and ``grammar NAME;`` line,
    then rules ``[public] <name> = expansion;``.  An expansion has words,
    ``<rule>`` references, alternatives ``a | b``, grouping ``( )``, optional
    ``[ ]``, and repetition ``x*`` (zero or more) and ``x+`` (one or more).
    Comments are ``//`` to the end of the line and ``/* ... */``.  Not in the
    subset: weights ``/w/``, tags ``{...}``, quoted tokens, imports, and
    recursive rules (see :func:`check_rules`).

    Raises:
      GrammarError: naming ``file:line`` of a syntax error or a duplicate rule.
    """
    tokens = tokenize_jsgf("\n".join(read_lines(path, GrammarError)), path)
    rules: dict[str, Rule] = {}
    for rule in _JsgfParser(tokens, path).rules():
        if rule.name in rules:
            raise GrammarError(f"{path}:{rule.line}: rule <{rule.name}> is already defined on line {rules[rule.name].line}")
        rules[rule.name] = rule
    if not rules:
        raise GrammarError(f"{path}: no rules (expected 'public <name> = ...;')")
    return rules


def check_rules(rules: dict[str, Rule], path: PathLike) -> None:
    """Checks that every ``<rule>`` reference is defined and that no rule refers to itself.

    Raises:
      GrammarError: at ``file:line`` of an unknown reference, or of the
        reference that closes a cycle (the message lists the cycle).
    """
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        for leaf in _leaves(rules[name].body):
            if not isinstance(leaf, RuleRef):
                continue
            if leaf.name not in rules:
                raise GrammarError(f"{path}:{leaf.line}: unknown rule <{leaf.name}>")
            if leaf.name in stack:
                cycle = " -> ".join(f"<{n}>" for n in stack[stack.index(leaf.name):] + [leaf.name])
                raise GrammarError(f"{path}:{leaf.line}: rule <{leaf.name}> is recursive ({cycle}); recursion is not supported")
            if leaf.name not in done:
                visit(leaf.name, stack + [leaf.name])
        done.add(name)

    for name in rules:
        if name not in done:
            visit(name, [name])


def root_rule(rules: dict[str, Rule], path: PathLike, name: str | None = None) -> Rule:
    """The rule to recognize: ``name`` (with or without ``< >``), else the first public rule.

    Raises:
      GrammarError: if ``name`` is not defined, or no rule is public.
    """
    if name is not None:
        key = name[1:-1] if name.startswith("<") and name.endswith(">") else name
        if key not in rules:
            raise GrammarError(f"{path}: no rule <{key}> (rules: {', '.join(f'<{r}>' for r in rules)})")
        return rules[key]
    public = [r for r in rules.values() if r.public]
    if not public:
        raise GrammarError(f"{path}: no public rule (declare one with 'public <name> = ...;')")
    return public[0]


# ---------------------------------------------------------------------------
# Expression -> epsilon-NFA -> DFA -> G


@dataclass
class _Nfa:
    """An epsilon-NFA under construction: arcs ``(src, dst, word id)``, word id 0 = epsilon."""

    arcs: list[tuple[int, int, int]] = field(default_factory=list)
    num_states: int = 0

    def state(self) -> int:
        self.num_states += 1
        return self.num_states - 1


def check_words(expr: Expr, rules: dict[str, Rule], lexicon_words: set[str], path: PathLike) -> None:
    """Checks that every word of ``expr`` and of all ``rules`` is in the lexicon.

    Raises:
      GrammarError: ``FILE:LINE: word 'X' is not in the lexicon`` for the first one that is not.
    """
    for body in [expr] + [r.body for r in rules.values()]:
        for leaf in _leaves(body):
            if isinstance(leaf, Word) and leaf.text not in lexicon_words:
                raise GrammarError(f"{path}:{leaf.line}: word '{leaf.text}' is not in the lexicon")


def _add_fragment(nfa: _Nfa, expr: Expr, word_ids: dict[str, int], rules: dict[str, Rule]) -> tuple[int, int]:
    """Adds ``expr`` to ``nfa`` (Thompson's construction); returns its (entry, exit) states.

    Rule references are expanded in place (rules must be non-recursive).
    """
    if isinstance(expr, RuleRef):
        return _add_fragment(nfa, rules[expr.name].body, word_ids, rules)
    entry, exit_ = nfa.state(), nfa.state()
    if isinstance(expr, Word):
        nfa.arcs.append((entry, exit_, word_ids[expr.text]))
    elif isinstance(expr, Concat):
        last = entry
        for item in expr.items:
            start, end = _add_fragment(nfa, item, word_ids, rules)
            nfa.arcs.append((last, start, EPSILON))
            last = end
        nfa.arcs.append((last, exit_, EPSILON))
    elif isinstance(expr, Choice):
        for option in expr.options:
            start, end = _add_fragment(nfa, option, word_ids, rules)
            nfa.arcs += [(entry, start, EPSILON), (end, exit_, EPSILON)]
    else:
        start, end = _add_fragment(nfa, expr.item, word_ids, rules)
        nfa.arcs += [(entry, start, EPSILON), (end, exit_, EPSILON)]
        if expr.at_most is None:
            nfa.arcs.append((end, start, EPSILON))
        if expr.at_least == 0:
            nfa.arcs.append((entry, exit_, EPSILON))
    return entry, exit_


def _determinize(nfa: _Nfa, start: int, final: int) -> tuple[list[dict[int, int]], list[bool]]:
    """Subset construction over epsilon-closures.

    Returns:
      ``arcs[s]`` (word id -> next DFA state) and ``is_final[s]`` for every
      DFA state s; state 0 is the start, states are numbered breadth first.
    """
    eps: dict[int, list[int]] = {}
    moves: dict[int, list[tuple[int, int]]] = {}
    for src, dst, label in nfa.arcs:
        if label == EPSILON:
            eps.setdefault(src, []).append(dst)
        else:
            moves.setdefault(src, []).append((label, dst))

    def closure(states: set[int]) -> frozenset[int]:
        todo, seen = list(states), set(states)
        while todo:
            for nxt in eps.get(todo.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    subsets = [closure({start})]
    index = {subsets[0]: 0}
    arcs: list[dict[int, int]] = []
    for subset in subsets:  # grows while it is walked: breadth first
        targets: dict[int, set[int]] = {}
        for s in subset:
            for label, dst in moves.get(s, []):
                targets.setdefault(label, set()).add(dst)
        out = {}
        for label in sorted(targets):
            nxt = closure(targets[label])
            if nxt not in index:
                index[nxt] = len(subsets)
                subsets.append(nxt)
            out[label] = index[nxt]
        arcs.append(out)
    return arcs, [final in subset for subset in subsets]


def _minimize(arcs: list[dict[int, int]], is_final: list[bool]) -> tuple[list[dict[int, int]], list[bool]]:
    """Merges the DFA states that accept the same suffixes (Moore's partition refinement).

    Returns the minimal DFA in the same form, its states numbered breadth
    first from the start state 0.
    """
    block = [int(f) for f in is_final]
    while True:
        signatures = [(block[s], tuple((w, block[d]) for w, d in out.items())) for s, out in enumerate(arcs)]
        ids: dict[tuple, int] = {}
        refined = [ids.setdefault(sig, len(ids)) for sig in signatures]
        if len(ids) == len(set(block)):
            break
        block = refined
    representative = {b: s for s, b in reversed(list(enumerate(block)))}  # lowest state of each block
    order, number = [block[0]], {block[0]: 0}
    for b in order:  # grows while it is walked: breadth first
        for dst in arcs[representative[b]].values():
            if block[dst] not in number:
                number[block[dst]] = len(order)
                order.append(block[dst])
    new_arcs = [{w: number[block[d]] for w, d in arcs[representative[b]].items()} for b in order]
    return new_arcs, [is_final[representative[b]] for b in order]


def _dfa_to_g(arcs: list[dict[int, int]], is_final: list[bool]) -> "k2.Fsa":
    """G with uniform scores per state: each of a state's k words (and stopping, if final) gets ``ln(1/n)``."""
    import k2

    lines = []
    for state, out in enumerate(arcs):
        cost = math.log(len(out) + is_final[state])  # -ln(1/n): OpenFST text holds costs
        lines += [f"{state} {dst} {word} {word} {cost:.9g}" for word, dst in out.items()]
        if is_final[state]:
            lines.append(f"{state} {cost:.9g}")
    return k2.arc_sort(k2.Fsa.from_openfst("\n".join(lines), acceptor=False))


def expression_to_g(
    lang: "LangDir", expr: Expr, path: PathLike, rules: dict[str, Rule] | None = None
) -> "k2.Fsa":
    """The deterministic, minimal, epsilon-free G that accepts the word sequences of ``expr``.

    Args:
      lang: Gives the lexicon (allowed words) and word ids (``words.txt``).
      expr: The grammar; ``RuleRef`` leaves name entries of ``rules``.
      path: The file ``expr`` came from (for error messages).
      rules: Rules that ``expr`` may refer to (already checked by :func:`check_rules`).

    Raises:
      GrammarError: ``FILE:LINE: word 'X' is not in the lexicon``.
    """
    rules = rules or {}
    check_words(expr, rules, {w for w, _ in lang.lexicon}, path)
    nfa = _Nfa()
    start, final = _add_fragment(nfa, expr, lang.words.sym2id, rules)
    arcs, is_final = _minimize(*_determinize(nfa, start, final))
    if is_final[0]:
        log.warning("%s: the grammar accepts the empty sentence", path)
    log.info("%s: G has %d states, %d word arcs", path, len(arcs), sum(len(a) for a in arcs))
    return _dfa_to_g(arcs, is_final)


# ---------------------------------------------------------------------------
# The kinds


def lm_vocabulary(lang: "LangDir") -> list[str]:
    """Words an LM over this lexicon should cover.

    All lexicon words except those pronounced only with silence phones
    (``<SIL>``, and ``<UNK>`` when it has no pronunciation of its own):
    optional silence is L's business, not the LM's.
    """
    silence = set(lang.silence_phones)
    non_silence = {w for w, pron in lang.lexicon if any(p not in silence for p in pron)}
    return sorted(non_silence)


def arpa_to_g(arpa_path: str | Path, words_txt: str | Path, max_order: int = -1) -> "k2.Fsa":
    """Converts an ARPA LM into G, an FSA over word ids with ``#0`` back-offs.

    ``<s>`` and ``</s>`` become epsilons, as in Kaldi.  Scores are natural
    log-probabilities.

    Raises:
      LanguageModelError: if kaldilm cannot read the file.
    """
    import k2

    arpa_path = Path(arpa_path)
    if not arpa_path.is_file():
        raise LanguageModelError(f"{arpa_path}: no such ARPA file")
    # kaldilm aborts the whole process on a malformed ARPA file, so it runs
    # in a child process whose failure becomes a one-line error.
    code = (
        "import sys, kaldilm; sys.stdout.write(kaldilm.arpa2fst(input_arpa=sys.argv[1], disambig_symbol='#0', "
        "read_symbol_table=sys.argv[2], max_order=int(sys.argv[3]), max_arpa_warnings=0))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(arpa_path), str(words_txt), str(max_order)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        errors = [l for l in proc.stderr.splitlines() if "[E]" in l or "Error" in l] or proc.stderr.splitlines()[-1:]
        raise LanguageModelError(f"{arpa_path}: cannot convert to FST: {(errors[-1] if errors else 'unknown error').strip()[:200]}")
    text = proc.stdout
    if not text.strip():
        raise LanguageModelError(f"{arpa_path}: conversion gave an empty FST")
    return k2.arc_sort(k2.Fsa.from_openfst(text, acceptor=False))


def _ngram_from_arpa(lang: "LangDir", config: NgramConfig) -> tuple[lmlib.NgramLM, str]:
    """Reads the ARPA file and drops what G cannot use (words outside the lexicon, ``<s> </s>``)."""
    arpa = config.arpa
    model = lmlib.read_arpa(arpa)
    model, dropped = lmlib.prune_to_vocab(model, lm_vocabulary(lang) + ["<s>", "</s>", "<UNK>"])
    if dropped:
        log.warning("%s: dropped %d words not in the lexicon: %s", arpa, len(dropped), " ".join(sorted(dropped)[:20]))
    if config.drop_bos_eos_bigram and model.order >= 2 and ("<s>", "</s>") in model.probs[1]:
        log.warning("%s: dropping the '<s> </s>' bigram (it would let the decoder favour empty output)", arpa)
        model = lmlib.drop_ngram(model, ("<s>", "</s>"))
    return model, str(arpa)


def _ngram_from_text(lang: "LangDir", config: NgramConfig) -> tuple[lmlib.NgramLM, str]:
    """Estimates the LM over the lexicon's vocabulary; OOV tokens become ``<UNK>`` if there are any."""
    vocab = lm_vocabulary(lang)
    words = set(vocab)
    oovs = sum(
        1 for f in config.text for line in Path(f).read_text(encoding="utf-8").splitlines()
        for w in line.split()[1:] if w not in words and w not in (lmlib.BOS, lmlib.EOS)
    )
    model, oov_count = lmlib.train_lm_from_text(
        [Path(f) for f in config.text], vocab, config.order, config.method, oov="<UNK>" if oovs else None
    )
    if oov_count:
        log.warning("LM training text: %d OOV tokens mapped to <UNK>", oov_count)
    return model, f"{config.order}-gram {config.method} from {', '.join(map(str, config.text))}"


@register_grammar("ngram", "an n-gram LM: a given ARPA file (--arpa) or one estimated from text (--text)", NgramConfig)
def build_ngram(lang: "LangDir", config: NgramConfig) -> CompiledGrammar:
    """G of an n-gram LM (Kaldi's ``arpa2fst`` through kaldilm, ``#0`` on back-off arcs).

    A given ARPA is cleaned first: n-grams with words outside the lexicon are
    dropped (and reported), and so is a ``<s> </s>`` bigram, which would make
    G's start state final at no cost and favour empty output.  The graph dir
    gets the LM as ``lm.arpa``.
    """
    model, source = _ngram_from_arpa(lang, config) if config.arpa is not None else _ngram_from_text(lang, config)
    text = lmlib.arpa_text(model)
    # kaldilm reads a file; a temporary one keeps the graph dir untouched until G and HLG are built.
    with tempfile.TemporaryDirectory(prefix="asr_lm_") as tmp:
        atomic_write_text(Path(tmp) / "lm.arpa", text)
        G = arpa_to_g(Path(tmp) / "lm.arpa", lang.path / "words.txt")
    return CompiledGrammar(G, {"lm": source, "order": model.order}, {"lm.arpa": text})


@register_grammar("one-of", "exactly one word of a list (--words FILE)", WordListConfig)
def build_one_of(lang: "LangDir", config: WordListConfig) -> CompiledGrammar:
    """G that accepts exactly one of the listed words, each with score ``ln(1/n)``."""
    words = read_word_list(config.words)
    G = expression_to_g(lang, Choice(tuple(words)), config.words)
    return CompiledGrammar(G, {"grammar": "one-of", "source": str(config.words), "words": len(words)})


@register_grammar("word-loop", "any sequence of one or more words of a list (--words FILE)", WordListConfig)
def build_word_loop(lang: "LangDir", config: WordListConfig) -> CompiledGrammar:
    """G that accepts any sequence of 1+ listed words.

    With n words: the first word scores ``ln(1/n)``, every later word and the
    stop ``ln(1/(n+1))``.
    """
    words = read_word_list(config.words)
    G = expression_to_g(lang, Repeat(Choice(tuple(words)), 1, None), config.words)
    return CompiledGrammar(G, {"grammar": "word-loop", "source": str(config.words), "words": len(words)})


@register_grammar("jsgf", "a grammar file in a JSGF subset (--jsgf FILE [--rule NAME])", JsgfConfig)
def build_jsgf(lang: "LangDir", config: JsgfConfig) -> CompiledGrammar:
    """G of a JSGF rule (see :func:`parse_jsgf`), uniform over the choices at each state of G."""
    rules = parse_jsgf(config.jsgf)
    check_rules(rules, config.jsgf)
    root = root_rule(rules, config.jsgf, config.rule)
    G = expression_to_g(lang, RuleRef(root.name, root.line), config.jsgf, rules)
    return CompiledGrammar(G, {"grammar": "jsgf", "source": str(config.jsgf), "rule": root.name})
