"""Root conftest: load the installed packages before pytest maps test folders onto names.

With ``--import-mode=importlib`` a test folder such as ``common_core/tests`` would otherwise
be able to register the source folder ``common_core`` as the package itself.
"""

import common_core  # noqa: F401
