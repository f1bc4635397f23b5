"""qms-deploy: `fab --list` shows every task. The tasks live in tasks/, one module per concern."""
from tasks import ns  # noqa: F401
