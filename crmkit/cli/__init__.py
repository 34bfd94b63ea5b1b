"""The ``crmkit`` command line: a click group; plugins add sub-groups. Thin callers of the services."""

from crmkit.cli.context import CLIContext, pass_crm
from crmkit.cli.output import emit

__all__ = ["CLIContext", "pass_crm", "emit"]
