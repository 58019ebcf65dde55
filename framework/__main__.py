"""``python -m framework`` is the same as ``loom``."""

from framework.cli import main

raise SystemExit(main())
