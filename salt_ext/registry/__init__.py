"""The module registry: which Salt functions ServerFlow may plan, and how.

Everything is read from ``modules.yaml`` next to this file (the single source
of truth, see its header for the field reference). Python code never keeps its
own list of function names or safety classes: it asks the registry.

    >>> reg = load_registry()
    >>> reg.safety("service.restart")
    'write'
    >>> reg.safety("no.such_function")
    'blocked'
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).with_name("modules.yaml")

SAFETY_CLASSES = ("read", "write", "blocked")
INTENTS = (
    "QUERY_METRICS",
    "QUERY_INVENTORY",
    "QUERY_LOGS",
    "DIAGNOSE",
    "REMEDIATE",
    "CONFIGURE",
    "DEPLOY",
    "REPORT",
)
ARG_TYPES = ("str", "int", "bool", "float", "list", "dict", "path")

# Marks "the registry states no default" (None is a real Salt default).
NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "NO_DEFAULT"})()


class RegistryError(ValueError):
    """The registry file is malformed (raised at load time, never later)."""


@dataclass(frozen=True)
class ArgSpec:
    """One keyword (or positional, when ``varargs``) argument of a function."""

    name: str
    type: str = "str"
    required: bool = False
    default: Any = NO_DEFAULT
    varargs: bool = False
    passthrough: bool = False
    shell: bool = False
    deny: tuple[Any, ...] = ()
    source: str | None = None  # "from" in YAML: entity to bind
    many: bool = False
    template: str | None = None
    value: Any = None
    description: str = ""

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT

    def type_errors(self, value: Any) -> list[str]:
        """Why ``value`` does not fit this argument's type (empty when it does)."""
        allowed = self.type.split("|")
        for t in allowed:
            if _fits(t, value):
                return []
        return [f"argument {self.name!r} must be {self.type}, got {type(value).__name__}"]


def _fits(type_name: str, value: Any) -> bool:
    if value is None:
        return True  # None means "Salt's default"; required-ness is checked apart
    if type_name in ("str", "path"):
        return isinstance(value, str)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "list":
        return isinstance(value, (list, tuple))
    if type_name == "dict":
        return isinstance(value, Mapping)
    return False


@dataclass(frozen=True)
class SaltCall:
    """A function call as LocalClient publishes it."""

    fun: str
    arg: list[Any]
    kwarg: dict[str, Any]


def salt_call(function: str, args: Mapping[str, Any], *, dry_run: bool = False) -> SaltCall:
    """The call for a registered function (an unknown one is passed as given, keyword args only)."""
    spec = load_registry().get(function)
    if spec is None:
        if dry_run:
            raise ValueError(f"{function} is not registered: no dry run")
        return SaltCall(function, [], dict(args))
    return spec.salt_call(args, dry_run=dry_run)


@dataclass(frozen=True)
class PreviewSpec:
    """The read call that shows what a write without a dry run is about to change.

    ``args`` maps each argument of the read ``function`` to the action's argument
    names that can fill it (the first one the action has wins).
    """

    function: str
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def bind(self, action_args: Mapping[str, Any]) -> dict[str, Any]:
        """The read call's arguments, taken from the action's."""
        out: dict[str, Any] = {}
        for name, sources in self.args.items():
            for source in sources:
                if action_args.get(source) not in (None, "", [], {}):
                    out[name] = action_args[source]
                    break
        return out


@dataclass(frozen=True)
class FunctionSpec:
    """Everything ServerFlow knows about one Salt function."""

    name: str
    description: str
    safety: str
    implementations: tuple[str, ...] = ()
    kind: str = "module"
    intents: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    role: str | None = None
    platforms: tuple[str, ...] = ("any",)
    supports_test: bool = False
    test_arg: str = "test"
    require_one_of: tuple[str, ...] = ()
    args: dict[str, ArgSpec] = field(default_factory=dict)
    preview: PreviewSpec | None = None

    @property
    def module(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def shell_args(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args.values() if a.shell)

    def split_args(self, args: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """``(arg, kwarg)`` for LocalClient: varargs arguments go positionally.

        ``pkg.version`` takes ``*names`` and ``grains.item`` ``*keys``: passing
        them as keyword arguments would silently ask Salt for nothing.
        """
        positional: list[Any] = []
        kwargs: dict[str, Any] = {}
        for key, value in args.items():
            spec = self.args.get(key)
            if spec is not None and spec.varargs:
                positional.extend(value if isinstance(value, (list, tuple)) else [value])
            else:
                kwargs[key] = value
        return positional, kwargs

    def salt_call(self, args: Mapping[str, Any], *, dry_run: bool = False) -> SaltCall:
        """What to publish for this function with ``args``.

        State functions (``kind: state``) run through ``state.single``. With
        ``dry_run`` the call is the function's own dry run (``test=True``, or its
        ``test_arg``); asking a dry run of a function without one is an error.
        """
        if dry_run and not self.supports_test:
            raise ValueError(f"{self.name} has no dry run (supports_test is false)")
        arg, kwarg = self.split_args(args)
        if dry_run:
            kwarg[self.test_arg if self.kind == "module" else "test"] = True
        if self.kind == "state":
            return SaltCall("state.single", [self.name, *arg], kwarg)
        return SaltCall(self.name, arg, kwarg)

    def runs_on(self, os_family: str | None) -> bool:
        """Whether this function exists on a minion of that ``os_family`` grain."""
        if "any" in self.platforms:
            return True
        fam = (os_family or "").lower()
        is_windows = fam == "windows"
        for p in self.platforms:
            p = p.lower()
            if p == "windows" and is_windows:
                return True
            if p == "linux" and not is_windows:
                return True
            if p == fam:
                return True
        return False

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe description (for the LLM schema, the UI and the docs)."""
        return {
            "name": self.name,
            "description": self.description,
            "safety": self.safety,
            "kind": self.kind,
            "intents": list(self.intents),
            "topics": list(self.topics),
            "supports_test": self.supports_test,
            "platforms": list(self.platforms),
            "args": {
                a.name: {
                    "type": a.type,
                    "required": a.required,
                    **({"default": a.default} if a.has_default else {}),
                    **({"shell": True} if a.shell else {}),
                }
                for a in self.args.values()
            },
        }


@dataclass(frozen=True)
class TopicSpec:
    """A subject a question can be about (cpu, disk, logs ...)."""

    name: str
    intent: str
    keywords: tuple[str, ...]


class Registry:
    """The loaded registry; immutable, iterable over FunctionSpec in file order."""

    def __init__(self, functions: dict[str, FunctionSpec], topics: dict[str, TopicSpec], path: Path | None = None):
        self._functions = functions
        self.topics = topics
        self.path = path

    def __iter__(self) -> Iterator[FunctionSpec]:
        return iter(self._functions.values())

    def __len__(self) -> int:
        return len(self._functions)

    def __contains__(self, name: object) -> bool:
        return name in self._functions

    def names(self) -> list[str]:
        return list(self._functions)

    def get(self, name: str) -> FunctionSpec | None:
        return self._functions.get(name)

    def safety(self, name: str) -> str:
        """read | write | blocked; anything not in the registry is blocked."""
        spec = self._functions.get(name)
        return spec.safety if spec else "blocked"

    def for_intent(self, intent: str) -> list[FunctionSpec]:
        """Functions serving ``intent`` (blocked ones excluded), in file order."""
        return [f for f in self if intent in f.intents and f.safety != "blocked"]

    def for_topic(self, topic: str) -> list[FunctionSpec]:
        return [f for f in self if topic in f.topics and f.safety != "blocked"]

    def validate_args(self, name: str, args: Mapping[str, Any] | None) -> list[str]:
        """Problems with calling ``name`` with ``args`` (empty list when fine).

        Checks unknown arguments, missing required ones, the one-of groups and
        types; it says nothing about safety (that is the policy's job).
        """
        spec = self._functions.get(name)
        if spec is None:
            return [f"{name} is not in the module registry"]
        args = dict(args or {})
        errors: list[str] = []
        for key in args:
            if key not in spec.args:
                errors.append(f"{name} has no argument {key!r}")
        for arg in spec.args.values():
            if arg.name in args:
                errors.extend(f"{name}: {e}" for e in arg.type_errors(args[arg.name]))
            if arg.required and args.get(arg.name) in (None, "", [], ()):
                errors.append(f"{name} requires argument {arg.name!r}")
        if spec.require_one_of and not any(args.get(k) not in (None, "", []) for k in spec.require_one_of):
            errors.append(f"{name} requires one of {', '.join(spec.require_one_of)}")
        return errors

    def keywords(self) -> set[str]:
        """Every word the registry uses to describe topics, functions and verbs."""
        words: set[str] = set()
        for t in self.topics.values():
            for k in t.keywords:
                words.update(k.split())
        for f in self:
            words.update(f.keywords)
            words.update(f.verbs)
            words.update(f.topics)
        return words

    def as_dict(self) -> dict[str, Any]:
        return {"functions": [f.as_dict() for f in self], "topics": {t.name: list(t.keywords) for t in self.topics.values()}}


def _tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _parse_arg(fname: str, name: str, raw: Mapping[str, Any]) -> ArgSpec:
    known = {"type", "required", "default", "varargs", "passthrough", "shell", "deny", "from", "many", "template", "value", "description"}
    unknown = set(raw) - known
    if unknown:
        raise RegistryError(f"{fname}: argument {name}: unknown field(s) {sorted(unknown)}")
    typ = str(raw.get("type", "str"))
    for t in typ.split("|"):
        if t not in ARG_TYPES:
            raise RegistryError(f"{fname}: argument {name}: unknown type {t!r}")
    return ArgSpec(
        name=name,
        type=typ,
        required=bool(raw.get("required", False)),
        default=raw["default"] if "default" in raw else NO_DEFAULT,
        varargs=bool(raw.get("varargs", False)),
        passthrough=bool(raw.get("passthrough", False)),
        shell=bool(raw.get("shell", False)),
        deny=_tuple(raw.get("deny")),
        source=raw.get("from"),
        many=bool(raw.get("many", False)),
        template=raw.get("template"),
        value=raw.get("value"),
        description=str(raw.get("description", "")),
    )


def _parse_function(name: str, raw: Mapping[str, Any]) -> FunctionSpec:
    if "." not in name:
        raise RegistryError(f"{name}: function names are module.function")
    safety = raw.get("safety")
    if safety not in SAFETY_CLASSES:
        raise RegistryError(f"{name}: safety must be one of {SAFETY_CLASSES}, got {safety!r}")
    intents = _tuple(raw.get("intents"))
    for i in intents:
        if i not in INTENTS:
            raise RegistryError(f"{name}: unknown intent {i!r}")
    if not raw.get("description"):
        raise RegistryError(f"{name}: a description is required")
    args = {k: _parse_arg(name, k, v or {}) for k, v in (raw.get("args") or {}).items()}
    one_of = _tuple(raw.get("require_one_of"))
    for k in one_of:
        if k not in args:
            raise RegistryError(f"{name}: require_one_of names unknown argument {k!r}")
    return FunctionSpec(
        name=name,
        description=str(raw["description"]),
        safety=safety,
        implementations=_tuple(raw.get("implementations")),
        kind=str(raw.get("kind", "module")),
        intents=intents,
        topics=_tuple(raw.get("topics")),
        keywords=tuple(str(k).lower() for k in _tuple(raw.get("keywords"))),
        verbs=tuple(str(v).lower() for v in _tuple(raw.get("verbs"))),
        role=raw.get("role"),
        platforms=_tuple(raw.get("platforms")) or ("any",),
        supports_test=bool(raw.get("supports_test", False)),
        test_arg=str(raw.get("test_arg", "test")),
        require_one_of=one_of,
        args=args,
        preview=_parse_preview(name, raw.get("preview"), args),
    )


def _parse_preview(name: str, raw: Any, action_args: Mapping[str, ArgSpec]) -> PreviewSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw.get("function"):
        raise RegistryError(f"{name}: preview needs a function")
    bound: dict[str, tuple[str, ...]] = {}
    for arg, sources in (raw.get("args") or {}).items():
        sources = _tuple(sources)
        for source in sources:
            if source not in action_args:
                raise RegistryError(f"{name}: preview argument {arg!r} binds unknown argument {source!r}")
        bound[str(arg)] = tuple(str(s) for s in sources)
    return PreviewSpec(str(raw["function"]), bound)


def parse_registry(data: Mapping[str, Any], path: Path | None = None) -> Registry:
    """Build a Registry from the parsed YAML document (validates as it goes)."""
    if not isinstance(data, Mapping) or "functions" not in data:
        raise RegistryError("registry document needs a 'functions' mapping")
    topics: dict[str, TopicSpec] = {}
    for tname, traw in (data.get("topics") or {}).items():
        intent = traw.get("intent")
        if intent not in INTENTS:
            raise RegistryError(f"topic {tname}: unknown intent {intent!r}")
        topics[tname] = TopicSpec(tname, intent, tuple(str(k).lower() for k in _tuple(traw.get("keywords"))))
    functions = {name: _parse_function(name, raw or {}) for name, raw in data["functions"].items()}
    for f in functions.values():
        if f.preview is not None:
            probe = functions.get(f.preview.function)
            if probe is None or probe.safety != "read":
                raise RegistryError(f"{f.name}: preview function {f.preview.function!r} is not a registered read")
            unknown = set(f.preview.args) - set(probe.args)
            if unknown:
                raise RegistryError(f"{f.name}: preview passes {sorted(unknown)} that "
                                    f"{probe.name} does not take")
        if f.supports_test and f.kind == "module" and f.test_arg not in f.args:
            raise RegistryError(f"{f.name}: its dry-run argument {f.test_arg!r} is not among its args")
        for t in f.topics:
            if t not in topics:
                raise RegistryError(f"{f.name}: unknown topic {t!r}")
    return Registry(functions, topics, path)


def load_registry(path: str | Path | None = None) -> Registry:
    """Load the registry; the default file is parsed once and cached."""
    if path is None:
        return _default_registry()
    return _load(Path(path))


# libyaml's loader parses the registry ~10x faster than the pure-Python one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(path: Path) -> Registry:
    with path.open(encoding="utf-8") as fh:
        return parse_registry(yaml.load(fh, Loader=_YAML_LOADER), path)  # noqa: S506 - a safe loader


@functools.lru_cache(maxsize=1)
def _default_registry() -> Registry:
    return _load(DEFAULT_PATH)


__all__ = [
    "ArgSpec",
    "FunctionSpec",
    "INTENTS",
    "NO_DEFAULT",
    "PreviewSpec",
    "Registry",
    "RegistryError",
    "SAFETY_CLASSES",
    "SaltCall",
    "TopicSpec",
    "load_registry",
    "parse_registry",
    "salt_call",
]
