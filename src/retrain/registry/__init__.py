"""The registry: the champion pointer, GTO tags, git, all-or-nothing transactions, the commands
that move production."""
