# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled Jinja templates, shared by the workers of one ansible-playbook run.

Ansible forks a worker process for each task and host, and ansible-core 2.19 compiles every template string a
task renders (its arguments, its environment, each variable those name) from source, in that worker: Jinja
parses it and generates Python from the tree, then the worker exits and forgets it. The next task compiles the
same strings again. In a no-op site.yml the workers spent about a third of their time there (7,500 compiles
in 470 workers; the same few hundred strings).

install() gives the run a directory of compiled templates, made in the controller before it forks a worker:
a worker looks a string up by a digest of the string and of everything the compilation reads (the
environment's lexer and code-generation settings, Ansible's backslash escaping at that moment, the template's
name), and compiles and stores it only when it is not there. A stored template is the code object Jinja
itself made, so rendering is unchanged; a string that does not compile is never stored, so its error is
Jinja's own, each time. The directory is removed when the run ends; nothing outlives the run, so a changed
filter plugin or another Ansible version never meets an old entry.

Where the internals it keys on are missing (another ansible-core), install() does nothing: templates compile
as Ansible compiles them.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import marshal
import os
import shutil
import tempfile
from types import CodeType
from typing import Any

# What Jinja's lexer and code generator read from an environment (Ansible's template overrides are a subset).
_SETTINGS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "autoescape",
    "is_async",
    "finalize",
)

_directory: str | None = None
_compiled: dict[str, CodeType] = {}  # this process's own lookups, so a template is read at most once


def _store(path: str, code: CodeType) -> None:
    """Keep a compiled template for the run's other workers; a full or vanished directory only costs the sharing."""
    partial = f"{path}.{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)  # whole or absent: another worker may be storing the same key
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(partial)


def install() -> None:
    """Share compiled templates between this process and the workers it forks from now on (once per run)."""
    global _directory
    if _directory is not None:
        return
    try:
        import jinja2
        import jinja2.nodes
        from ansible._internal._templating._jinja_bits import AnsibleEnvironment, _TemplateCompileContext
    except ImportError:
        return

    original = jinja2.Environment.compile
    try:
        _directory = tempfile.mkdtemp(prefix="ansible-templates-")
    except OSError:  # no writable temporary directory: templates compile as Ansible compiles them
        return
    owner = os.getpid()
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(_directory, ignore_errors=True))

    def compile(
        self: Any,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        # A template string, or a tree Jinja parsed from an expression (a conditional): a tree is keyed by its
        # repr, which names every node and field. Raw Python, and a run that debugs its template source, go
        # Jinja's way.
        if isinstance(source, str):
            text = source
        elif isinstance(source, jinja2.nodes.Template):
            text = repr(source)
        else:
            text = None
        if raw or text is None or getattr(self, "_debuggable_template_source", False):
            return original(self, source, name, filename, raw, defer_init)
        context = _TemplateCompileContext.current(optional=True)
        digest = hashlib.blake2b(digest_size=20)
        settings = tuple(getattr(self, setting, None) for setting in _SETTINGS)
        escaping = context.escape_backslashes if context else None
        head = (type(self).__qualname__, type(source).__name__, settings, escaping, name, filename, defer_init)
        digest.update(repr(head).encode())
        digest.update(text.encode("utf-8", "surrogatepass"))
        key = digest.hexdigest()
        code = _compiled.get(key)
        if code is None:
            path = os.path.join(_directory, key)
            try:
                with open(path, "rb") as stored:
                    code = marshal.load(stored)  # noqa: S302 - written by this run, in a directory only its user may enter
            except (OSError, EOFError, ValueError, TypeError):
                code = original(self, source, name, filename, raw, defer_init)
                _store(path, code)
            _compiled[key] = code
        return code

    AnsibleEnvironment.compile = compile
