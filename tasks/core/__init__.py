"""The layers under the tasks: settings and secrets (plan), facts (pure parsers), host (the remote boundary)."""
