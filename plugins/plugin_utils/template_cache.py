# Copyright: contributors to hawa.platform
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled Jinja templates, shared by the workers of a run and kept for the next run, as Python keeps bytecode.

Ansible forks a worker process for each task and host, and ansible-core 2.19 compiles every template string a
task renders (its arguments, its environment, each variable those name) from source, in that worker: Jinja
parses it and generates Python from the tree, then the worker exits and forgets it. The next task compiles the
same strings again. In a no-op site.yml the workers spent about a third of their time there (7,500 compiles
in 470 workers; the same few hundred strings).

install() gives the run a directory of compiled templates, chosen in the controller before it forks a worker:
a worker looks a string up by a digest of the string and of everything the compilation reads (the
environment's lexer and code-generation settings, Ansible's backslash escaping at that moment, the template's
name), and compiles and stores it only when it is not there. A stored template is the code object Jinja
itself made, so rendering is unchanged; a string that does not compile is never stored, so its error is
Jinja's own, each time. The code refers to filters, tests and variables by name and finds them when it runs,
so a changed plugin or variable needs no new entry.

The directory is the user's own, $ANSIBLE_HOME/hawa_platform/templates/<Python>-<Jinja>-<ansible-core>, so a
second run finds what the first compiled (a no-op site.yml compiled 1,144 templates, 3.8 CPU-seconds) and
another Python, Jinja or Ansible never meets an old entry; directories of other versions are removed. It holds
code this process will run, so it is used only when this user owns it and no one else may write to it; else,
and when it cannot be made, the run gets a directory of its own, removed when it ends. An entry is a few
kilobytes; past _MAX_ENTRIES (a project's templates are a few thousand) the directory starts again.

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
import stat
import sys
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

# Bumped when the key or the entries' format changes, so that an old entry is never read as a new one.
_FORMAT = "1"
_MAX_ENTRIES = 20000

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


def _stable(value: Any) -> Any:
    """A setting as the compiler sees it, the same in every process: a function (finalize, autoescape) by its
    name and how Jinja passes it arguments, not by its address."""
    if callable(value):
        return (
            getattr(value, "__module__", None),
            getattr(value, "__qualname__", None),
            getattr(value, "jinja_pass_arg", None),
        )
    return value


def _trusted(path: str) -> bool:
    """A directory of this user's that no one else may write to (its entries are code this process runs)."""
    info = os.lstat(path)
    return (
        stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _persistent_directory(jinja_version: str) -> str | None:
    """This user's directory of compiled templates for this Python, Jinja and ansible-core; None when unusable."""
    from ansible import constants
    from ansible.release import __version__ as ansible_version

    home = constants.config.get_config_value("ANSIBLE_HOME")
    root = os.path.join(home, "hawa_platform", "templates")
    tag = f"{sys.implementation.cache_tag}-jinja2-{jinja_version}-ansible-core-{ansible_version}-{_FORMAT}"
    path = os.path.join(root, tag)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if not (_trusted(home) and _trusted(root) and _trusted(path)):
            return None
        for other in os.listdir(root):  # left by another Python, Jinja or Ansible: never read again
            if other != tag:
                shutil.rmtree(os.path.join(root, other), ignore_errors=True)
        if len(os.listdir(path)) > _MAX_ENTRIES:
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return path


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
    _directory = _persistent_directory(jinja2.__version__)
    if _directory is None:
        try:
            _directory = tempfile.mkdtemp(prefix="ansible-templates-")
        except OSError:  # no writable temporary directory: templates compile as Ansible compiles them
            return
        run_directory, owner = _directory, os.getpid()
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(run_directory, ignore_errors=True))

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
        settings = tuple(_stable(getattr(self, setting, None)) for setting in _SETTINGS)
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
                    code = marshal.load(stored)  # noqa: S302 - written by this user, in a directory only they may write to
            except (OSError, EOFError, ValueError, TypeError):
                code = original(self, source, name, filename, raw, defer_init)
                _store(path, code)
            _compiled[key] = code
        return code

    AnsibleEnvironment.compile = compile
