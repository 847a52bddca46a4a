"""``python -m vkit`` is the ``vkit`` command."""

from vkit.cli import main

raise SystemExit(main())
