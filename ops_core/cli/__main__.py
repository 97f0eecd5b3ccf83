"""``python -m ops_core.cli``: the ``opscore`` command without the installed script (worktrees)."""

from ops_core.cli import main

main()
