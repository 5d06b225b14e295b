"""Templates, in one place: the Jinja2 environment factory and the prose strings, for the handouts
(`derive.render`) and the errata (`derive.errata`).

Every template environment is a `jinja2.sandbox.ImmutableSandboxedEnvironment` (`Sandbox`): a template —
including one from `--template-dir` — can format the context it is given and nothing else
(`''.__class__.__mro__`, `cycler.__init__.__globals__` and the like are refused, and so is
changing a list or dict).  Templates and string tables are read through `files.read_input`
(regular files only, at most `MAX_TEMPLATE_BYTES`); a template name is a path below one of the
template directories (never `..`).  Any failure while loading or rendering a template is one
DeriveError line naming the template.  Compiled templates are kept in memory for the process and
on disk between runs (`cache_directory`, ~/.cache/derive/templates; README says how to clear it).

LaTeX templates use the delimiters `\\BLOCK{…}`, `\\VAR{…}`, `\\#{…}` (no clash with TeX braces);
every environment has StrictUndefined and no autoescape: prose is escaped by the filters the caller
registers (`derive.escape`), the LaTeX that the printer makes is not.

A leaf: imports nothing of derive but `errors`, `files` and `escape`.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import sys
import tempfile
import tomllib
from importlib import resources
from pathlib import Path

import jinja2
import jinja2.sandbox
from jinja2.loaders import split_template_path

from .errors import DeriveError
from .escape import MD_MATH_FILTERS, escape_text, md_text, mermaid_text, tex_text
from .files import is_dir, read_input

MAX_TEMPLATE_BYTES = 1_000_000


def default_template_dir() -> Path:
    """templates/ of a source checkout, else the installed package derive.templates."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "templates", package / "templates"):
        if (candidate / "solution.md.j2").is_file():
            return candidate
    with resources.as_file(resources.files("derive.templates") / "solution.md.j2") as f:
        return Path(f).parent


def template_paths(template_dir: str | None = None, sub: str = "") -> list[Path]:
    """The directories searched for templates: `template_dir` (if given) before the built-in one."""
    paths = [default_template_dir() / sub if sub else default_template_dir()]
    if template_dir is not None:
        d = Path(template_dir)
        if not is_dir(d):
            try:
                d.stat()
                reason = "not a directory"
            except OSError as e:
                reason = "no such directory" if isinstance(e, FileNotFoundError) else (e.strerror or str(e))
            except ValueError as e:
                reason = str(e)
            raise DeriveError(f"--template-dir: {reason}: {template_dir}")
        paths.insert(0, d)
    return paths


class Loader(jinja2.BaseLoader):
    """Templates from a list of directories, read as regular files of bounded size."""

    def __init__(self, paths):
        self.paths = [Path(p) for p in paths]

    def get_source(self, environment, template):
        pieces = split_template_path(template)        # refuses '..'
        for base in self.paths:
            candidate = base.joinpath(*pieces)
            try:
                candidate.lstat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except (OSError, ValueError):
                pass                                  # read_input says what is wrong
            _display, source = read_input(candidate, limit=MAX_TEMPLATE_BYTES, what="template")
            return source, str(candidate), lambda: True
        raise jinja2.TemplateNotFound(template)


class _Compiled(jinja2.BytecodeCache):
    """Compiled templates, by template name and file, used again only for the same source text
    (Jinja2 compares its checksum): kept for the process (`derive build` renders each template many
    times, and compiling it was a third of the build), and on disk in `directory` (the next run
    loads the compiled code instead of compiling the template again; see `cache_directory`).  One
    per set of delimiters and filter names (what compiling a template depends on besides its
    text); the directory is named by those, the options and the Jinja2 and Python versions."""

    def __init__(self, directory: Path | None = None):
        self.code: dict = {}
        self.directory = directory

    def load_bytecode(self, bucket):
        kept = self.code.get(bucket.key)
        if kept is not None and kept[0] == bucket.checksum:
            bucket.code = kept[1]
            return
        path = self._path(bucket)
        if path is None:
            return
        try:
            with open(path, "rb") as f:
                bucket.load_bytecode(f)      # resets itself on another checksum or Jinja2 magic
        except Exception:                    # a missing, unreadable or damaged file: compiled again
            bucket.reset()
        if bucket.code is not None:
            self.code[bucket.key] = (bucket.checksum, bucket.code)

    def dump_bytecode(self, bucket):
        self.code[bucket.key] = (bucket.checksum, bucket.code)
        path = self._path(bucket, create=True)
        if path is None:
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                bucket.write_bytecode(f)
            os.replace(tmp, path)
            tmp = None
        except Exception:                    # no cache then; the template is compiled next time
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _path(self, bucket, create: bool = False) -> Path | None:
        if self.directory is None or not all(_private_directory(d, create) for d in (self.directory.parent,
                                                                                     self.directory)):
            return None
        return self.directory / f"{bucket.key}.cache"


CACHE_ENV = "DERIVE_TEMPLATE_CACHE"


def cache_directory() -> Path | None:
    """Where compiled templates are kept between runs: $DERIVE_TEMPLATE_CACHE, else
    $XDG_CACHE_HOME/derive/templates, else ~/.cache/derive/templates; none when
    DERIVE_TEMPLATE_CACHE is set to "" or "off".  Removing the directory clears it."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip() in ("", "off") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except (RuntimeError, KeyError):         # no home directory
        return None
    return root / "derive" / "templates"


def _private_directory(path: Path, create: bool) -> bool:
    """`path` is a directory of this user that no one else may write (compiled code is run from
    it: the cache directory and its subdirectory are checked), made (mode 0700) when `create`;
    False otherwise — the cache is then not used."""
    try:
        if create:
            os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _compiled(options: dict, filters) -> _Compiled:
    """The bytecode cache of one environment configuration (one per process)."""
    config = repr((jinja2.__version__, sys.implementation.cache_tag, Sandbox.__name__,
                   sorted(options.items()), sorted(filters)))
    got = _COMPILED.get(config)
    if got is None:
        root = cache_directory()
        sub = hashlib.sha256(config.encode("utf-8")).hexdigest()[:24]
        got = _COMPILED[config] = _Compiled(None if root is None else root / sub)
    return got


_COMPILED: dict = {}


class Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """The immutable sandbox, its attribute verdicts memoised: `is_safe_attribute`'s answer
    (jinja2's `is_internal_attribute` and `modifies_known_mutable`) depends on the object only
    through its type (isinstance checks) — the attribute's value is not read — so it is kept per
    (type, class, attribute name); at most SAFE_MEMO of them."""

    SAFE_MEMO = 4096

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._safe: dict = {}

    def is_safe_attribute(self, obj, attr, value) -> bool:
        key = (type(obj), obj.__class__, attr)
        got = self._safe.get(key)
        if got is None:
            got = super().is_safe_attribute(obj, attr, value)
            if len(self._safe) < self.SAFE_MEMO:
                self._safe[key] = got
        return got


def environment(fmt: str, paths, filters: dict | None = None) -> jinja2.Environment:
    """The sandboxed Jinja2 environment of a template set ('tex' delimiters for LaTeX).  A Markdown
    one also has the filters `imath` and `dmath`, the only writers of Markdown math delimiters."""
    if fmt != "tex":
        filters = {**MD_MATH_FILTERS, **(filters or {})}
    # optimized=False: Jinja2's constant folding at compile time saves nothing measurable when
    # rendering these templates and costs 15-20 % of compiling them (a build compiles 18)
    common = dict(undefined=jinja2.StrictUndefined, autoescape=False,
                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, auto_reload=False, optimized=False)
    if fmt == "tex":
        common.update(block_start_string="\\BLOCK{", block_end_string="}",
                      variable_start_string="\\VAR{", variable_end_string="}",
                      comment_start_string="\\#{", comment_end_string="}",
                      line_statement_prefix=None, line_comment_prefix="%#")
    options = {k: v if isinstance(v, (str, bool, type(None))) else getattr(v, "__name__", repr(v))
               for k, v in common.items()}
    common.update(loader=Loader(paths), bytecode_cache=_compiled(options, filters or {}))
    env = Sandbox(**common)
    env.filters.update(filters or {})
    return env


def render(env: jinja2.Environment, name: str, context: dict) -> str:
    """Render the template `name`; every failure is one DeriveError naming the template."""
    filename = name
    try:
        template = env.get_template(name)
        filename = template.filename or name
        return template.render(**context)
    except DeriveError:
        raise
    except jinja2.TemplateNotFound as e:
        raise DeriveError(f"template {e.name} not found") from None
    except jinja2.TemplateSyntaxError as e:
        raise DeriveError(f"template syntax error: {e.message}", file=e.filename or e.name or filename,
                          key=f"line {e.lineno}") from None
    except jinja2.sandbox.SecurityError as e:
        raise DeriveError(f"template refused: {e}", file=filename) from None
    except jinja2.UndefinedError as e:
        raise DeriveError(f"template error: {e.message}", file=filename) from None
    except RecursionError:
        raise DeriveError("template error: nested too deeply", file=filename) from None
    except Exception as e:                     # a template is user input: no traceback
        raise DeriveError(f"template error: {type(e).__name__}: {e}", file=filename) from None


# ---------------------------------------------------------------- prose strings
_TABLES: dict = {}


def load_strings(env: jinja2.Environment, name: str) -> dict:
    """A string table (strings.<lang>.toml) found like a template.  The file is read every time;
    its text is parsed once per process (`derive build` asks for each table dozens of times).
    The table is shared: callers only read it."""
    try:
        source, filename, _ = env.loader.get_source(env, name)
    except jinja2.TemplateNotFound:
        raise DeriveError(f"template {name} not found") from None
    table = _TABLES.get((filename, source))
    if table is not None:
        return table
    try:
        table = tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        raise DeriveError(f"not valid TOML: {e}", file=filename) from None
    _TABLES[(filename, source)] = table
    return table


_PLACEHOLDER = re.compile(r"(\{[A-Za-z_]+\})")


def string_function(table: dict, fmt: str, name: str):
    """s(key, **values): the string `key` with its {placeholders} filled in (LaTeX-escaped for tex)."""
    def s(key: str, **kw) -> str:
        if key not in table:
            raise DeriveError(f"no string {key!r} in strings.{name}.toml")
        out = []
        for part in _PLACEHOLDER.split(str(table[key])):
            if _PLACEHOLDER.fullmatch(part):
                k = part[1:-1]
                if k not in kw:
                    raise DeriveError(f"string {key!r} needs a value for {{{k}}}")
                out.append(str(kw[k]))
            else:
                out.append(escape_text(part) if fmt == "tex" else part)
        return "".join(out)

    return s


def handout_environment(fmt: str, template_dir: str | None = None,
                        math_filters: dict | None = None) -> jinja2.Environment:
    """The sandboxed environment of the handout templates (templates/, `template_dir` first), with
    their filters: `tex` or `md` (text escaping) and `mermaid` — one definition for the worked
    solutions (`render`) and the exercise sheets (`exercise_context`).  `math_filters` replace
    Markdown's `imath`/`dmath` (Jupyter's delimiters instead of GitHub's)."""
    filters = {"tex": tex_text} if fmt == "tex" else {"md": md_text, **(math_filters or {})}
    filters["mermaid"] = mermaid_text
    return environment(fmt, template_paths(template_dir), filters)
