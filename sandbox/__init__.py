"""Apply a proposed change in an isolated worktree, rerun recorded inputs, compare before and after."""
