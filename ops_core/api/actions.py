"""Changes to monitored servers: the action policy per target and feature, and the journal of
every change opscore made, reported or was refused (ops_core.targets.actions does them)."""

from __future__ import annotations

from .. import repository
from ..repository import actions as journal
from ..repository.actions import JournalEntry
from ..targets import actions
from .targets import get_target

__all__ = [
    "JournalEntry",
    "ACTION_FEATURES",
    "action_journal",
    "get_action",
    "action_policies",
    "set_action_policy",
]

#: feature -> (description, default mode)
ACTION_FEATURES = {n: (f.description, f.default) for n, f in actions.FEATURES.items()}


def action_journal(
    target: str | None = None, feature: str | None = None, limit: int = 100
) -> list[JournalEntry]:
    """The newest journal entries (all targets, or one; one feature or all)."""
    with repository.session() as repo:
        tid = get_target(target).target_id if target else None
        if feature is not None and feature not in actions.FEATURES:
            actions.policy(repo, tid or 0, feature)  # raises the unknown-feature error
        return journal.entries(repo, tid, feature, limit)


def get_action(action_id: int) -> JournalEntry:
    with repository.session() as repo:
        return journal.entry(repo, action_id)


def action_policies(target: str) -> dict[str, str]:
    """The mode of every feature on the target (its policy, else the feature's default)."""
    t = get_target(target)
    with repository.session() as repo:
        return {f: actions.policy(repo, t.target_id, f) for f in actions.FEATURES}


def set_action_policy(target: str, feature: str, mode: str, by: str = "opscore") -> dict[str, str]:
    """Set the mode (off / report_only / implement) of one feature on a target."""
    t = get_target(target)
    with repository.session() as repo:
        actions.set_policy(repo, t.target_id, feature, mode, by)
    return action_policies(target)
