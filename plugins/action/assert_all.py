# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hawa.platform.assert_all: several assert tasks in one (documentation: plugins/modules/assert_all.py).

A role's preflight is a dozen checks, each with its own message. As separate assert tasks each costs a task
result per host (about 0.07 s of every run's chain apiece); here they cost one, and every failing check is
reported at once instead of the first. A check is evaluated as an assert task would be: its `when` first (a
check whose `when` is false is not evaluated, and its message is not rendered), then its `that` in order,
and its `fail_msg` is rendered only when it fails.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

# What plugins/modules/assert_all.py documents (tests/modules/test_module_docs.py holds the two together).
ARGUMENT_SPEC = {
    "checks": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "that": {"type": "list", "elements": "str", "required": True},
            "fail_msg": {"type": "str", "required": True},
            "when": {"type": "list", "elements": "str"},
        },
    },
}


def _listed(check: t.Any) -> t.Any:
    """A single condition as a list of one, as assert takes it; never split at commas, as a list option's
    string would be (a condition such as match('^a,b$') holds commas)."""
    if not isinstance(check, dict):
        return check
    return {
        key: [value] if key in ("that", "when") and isinstance(value, str) else value for key, value in check.items()
    }


class ActionModule(ActionBase):
    _requires_connection = False
    TRANSFERS_FILES = False

    @classmethod
    def finalize_task_arg(cls, name: str, value: t.Any, templar: t.Any, context: t.Any) -> t.Any:
        # The checks stay as written: run() evaluates each in turn, so that a check skipped by its `when` is
        # never rendered (its message may name variables only set when it applies).
        if name == "checks":
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if isinstance(args.get("checks"), list):
            args["checks"] = [_listed(check) for check in args["checks"]]
        validated = ArgumentSpecValidator(ARGUMENT_SPEC).validate(args)
        if validated.error_messages:
            raise AnsibleActionFail("assert_all: " + "; ".join(validated.error_messages))
        checks = validated.validated_parameters["checks"]
        if not checks:
            raise AnsibleActionFail("assert_all: checks is empty; give at least one {that, fail_msg[, when]}")

        failures: list[dict[str, t.Any]] = []
        passed = not_applicable = 0
        for number, check in enumerate(checks, start=1):
            try:
                applies = all(self._templar.evaluate_conditional(conditional=c) for c in check["when"] or [])
                failed = (
                    next((c for c in check["that"] if not self._templar.evaluate_conditional(conditional=c)), None)
                    if applies
                    else None
                )
            except Exception:
                # Separate asserts stopped at the first failure, so a later check could take for granted what an
                # earlier one checked (a mapping, a defined variable). When it cannot be evaluated after a failure,
                # the failures so far say what to fix; with none, the error is the task's, as assert's would be.
                if failures:
                    break
                raise
            if not applies:
                not_applicable += 1
            elif failed is None:
                passed += 1
            else:
                message = str(self._templar.template(check["fail_msg"]))
                failures.append({"check": number, "assertion": failed, "msg": message})

        # Not `skipped`: a result key of that name would mark the whole task skipped.
        result.update(changed=False, passed=passed, not_applicable=not_applicable, failures=failures)
        if failures:
            result["failed"] = True
            if len(failures) == 1:
                result["msg"] = failures[0]["msg"]
            else:
                result["msg"] = f"{len(failures)} checks failed: " + " ".join(
                    f"({i}) {f['msg']}" for i, f in enumerate(failures, start=1)
                )
        else:
            result["msg"] = f"All {passed} check(s) passed" + (
                f", {not_applicable} not applicable" if not_applicable else ""
            )
        return result
